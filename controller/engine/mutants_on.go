//go:build mutants

package engine

import (
	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// newLedger returns a ledger that starts from usage, with the broken-engine
// tests' flaws (this build has the tag mutants).
func newLedger(usage *allocator.Usage, f mutant.Flaws) *decide.Ledger {
	l := decide.NewLedger(usage)
	l.SetFlaws(f)
	return l
}
