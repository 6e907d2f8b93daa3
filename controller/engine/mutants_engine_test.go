//go:build mutants

package engine

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// The controller writes 10.0.0.1 to a; meanwhile the user annotates a
// with 10.0.0.1 itself (the address it was being given), so the write
// gets a 409; the informer shows the edit before the 409 comes back. Undoing
// the write must not free what the user set: b gets 10.0.0.2. The flawed
// engine that releases the whole holding gives b 10.0.0.1 too.
func TestARefusedWriteUndoesOnlyWhatItWouldHaveAdded(t *testing.T) {
	for _, flawed := range []bool{false, true} {
		h := newHarness(t, map[string]string{"range-global": "10.0.0.1-10.0.0.3"}, mutant.Flaws{ReleaseWholeOn409: flawed})
		a := h.f.put(lb("a", nil))
		h.e.Observe(a)
		h.f.beforePatch = func(from *corev1.Service) error {
			h.f.beforePatch = nil
			edited := h.f.put(lb("a", map[string]string{decide.AnnotationLoadBalancerIPs: "10.0.0.1"}))
			h.e.Observe(edited) // the informer's event, before the 409
			return nil          // the write is then refused: stale resourceVersion
		}
		h.sync(t, "ns/a")
		h.f.put(lb("b", nil))
		h.sync(t, "ns/b")
		got := h.addr("ns/b")
		if !flawed && got != "10.0.0.2" {
			t.Errorf("b got %q, want 10.0.0.2: the user's 10.0.0.1 on a stays reserved", got)
		}
		if flawed && got != "10.0.0.1" {
			t.Errorf("flawed engine: b got %q; the flaw should hand out the user's 10.0.0.1 (else this test cannot fail)", got)
		}
	}
}
