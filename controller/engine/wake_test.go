package engine

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// When an address frees up, the Services waiting for one are woken oldest
// first (creation timestamp, then namespace/name), not in name order.
func TestWaitingServicesAreWokenOldestFirst(t *testing.T) {
	h := newHarness(t, map[string]string{"range-global": "10.0.0.1-10.0.0.1"}, mutant.Flaws{})
	at := func(name string, sec int64) *corev1.Service {
		s := lb(name, nil)
		s.CreationTimestamp = metav1.Unix(sec, 0)
		return s
	}
	h.f.put(at("holder", 1))
	h.sync(t, "ns/holder")
	for _, s := range []*corev1.Service{at("zeta", 2), at("beta", 3), at("alpha", 3)} {
		h.f.put(s)
		h.sync(t, decide.Key(s))
	}
	if w := h.e.waitingKeys(); !slices.Equal(w, []string{"ns/zeta", "ns/alpha", "ns/beta"}) {
		t.Fatalf("waiting %v, want zeta (oldest), then alpha and beta (same second: by name)", w)
	}
	h.woken = nil
	delete(h.f.store, "ns/holder")
	delete(h.f.cache, "ns/holder")
	h.sync(t, "ns/holder")
	if !slices.Equal(h.woken, []string{"ns/zeta", "ns/alpha", "ns/beta"}) {
		t.Fatalf("woken %v, want oldest first", h.woken)
	}
	for _, k := range h.woken {
		h.sync(t, k)
	}
	if h.addr("ns/zeta") != "10.0.0.1" || h.addr("ns/alpha") != "" {
		t.Errorf("zeta %q alpha %q: the oldest should have the freed address", h.addr("ns/zeta"), h.addr("ns/alpha"))
	}
}
