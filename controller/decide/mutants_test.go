//go:build mutants

package decide

import (
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// A write refused with a 409 because the user annotated the Service with
// another address meanwhile: undoing the write must not free the user's
// address, which the informer showed (and Observe reserved) before the 409
// came back. The flawed ledger that releases the whole holding does.
func TestRefusedWriteUndoesOnlyWhatItAdded(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"range-global": "10.0.0.1-10.0.0.3"})
	for _, flawed := range []bool{false, true} {
		l := NewLedger(nil)
		l.SetFlaws(mutant.Flaws{ReleaseWholeOn409: flawed})
		d := l.Decide(cfg, svc("ns", "a", rv("5")), Options{})
		if JoinAddrs(d.Holding.Addrs) != "10.0.0.1" {
			t.Fatalf("a: %v", d.Holding.Addrs)
		}
		l.Observe(svc("ns", "a", rv("6"), annotated(AnnotationLoadBalancerIPs, "10.0.0.2")), Options{})
		l.WriteFailed(d)
		db := l.Decide(cfg, svc("ns", "b", rv("7")), Options{})
		dc := l.Decide(cfg, svc("ns", "c", rv("8")), Options{})
		got := JoinAddrs(append(db.Holding.Addrs, dc.Holding.Addrs...))
		if !flawed && got != "10.0.0.1,10.0.0.3" {
			t.Errorf("b and c got %s, want 10.0.0.1,10.0.0.3: the user's 10.0.0.2 stays a's", got)
		}
		if flawed && got != "10.0.0.1,10.0.0.2" {
			t.Errorf("flawed ledger: b and c got %s; the flaw should free the user's 10.0.0.2", got)
		}
	}
}
