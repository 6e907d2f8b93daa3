//go:build mutants

package engine

import (
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// Without the deferral (the Unfair flaw), the younger key synced first
// takes the address: the tests above can fail.
func TestWithoutDeferralTheYoungerWins(t *testing.T) {
	h := fairHarness(t, mutant.Flaws{Unfair: true}, "a", "b")
	h.remove(t, "ns/holder")
	h.sync(t, "ns/b")
	h.sync(t, "ns/a")
	if h.addr("ns/b") != "10.0.0.1" {
		t.Errorf("b %q: the flawed engine should give the address to whoever is synced first", h.addr("ns/b"))
	}
}
