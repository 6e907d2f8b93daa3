package engine

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// created returns a LoadBalancer Service created at second sec.
func created(name string, sec int64, annotations map[string]string) *corev1.Service {
	s := lb(name, annotations)
	s.CreationTimestamp = metav1.Unix(sec, 0)
	return s
}

// fairHarness holds 10.0.0.1, the one address of the pool, by "holder";
// the Services named wait for it, created in that order.
func fairHarness(t *testing.T, flaws mutant.Flaws, waiting ...string) *harness {
	t.Helper()
	h := newHarness(t, map[string]string{"range-global": "10.0.0.1-10.0.0.1"}, flaws)
	h.f.put(created("holder", 1, nil))
	h.sync(t, "ns/holder")
	for i, name := range waiting {
		h.f.put(created(name, int64(2+i), nil))
		h.sync(t, "ns/"+name)
	}
	if w := h.e.waitingKeys(); len(w) != len(waiting) {
		t.Fatalf("waiting %v, want %v", w, waiting)
	}
	return h
}

// remove deletes the Service named key and syncs it, as the informer's
// delete event would.
func (h *harness) remove(t *testing.T, key string) {
	t.Helper()
	delete(h.f.store, key)
	delete(h.f.cache, key)
	h.woken = nil
	h.sync(t, key)
}

// With several workers, the keys woken when an address frees up may be
// synced in any order: a younger one synced first gives way (it gets
// nothing, and the older ones are queued), the oldest gets the address,
// and the younger ones are queued again once it has had its turn. So, round
// after round, the address goes to the Service that has waited longest.
func TestAYoungerWokenServiceGivesWayToAnOlderOne(t *testing.T) {
	h := fairHarness(t, mutant.Flaws{}, "a", "b", "c")
	for round, want := range []string{"ns/a", "ns/b", "ns/c"} {
		free := "ns/holder"
		if round > 0 {
			free = []string{"ns/a", "ns/b", "ns/c"}[round-1]
		}
		h.remove(t, free)
		// The workers pick the woken keys up youngest first.
		woken := slices.Clone(h.woken)
		slices.Reverse(woken)
		h.woken = nil
		for _, k := range woken {
			h.sync(t, k)
		}
		if got := h.addr(want); got != "10.0.0.1" {
			t.Fatalf("round %d: %s got %q; the oldest waiting Service should have the freed address (a %q, b %q, c %q)",
				round, want, got, h.addrOf("ns/a"), h.addrOf("ns/b"), h.addrOf("ns/c"))
		}
		// Whatever was queued again is synced; nothing changes hands.
		for len(h.woken) > 0 {
			k := h.woken[0]
			h.woken = h.woken[1:]
			h.sync(t, k)
		}
		if got := h.addr(want); got != "10.0.0.1" {
			t.Fatalf("round %d: %s lost the address (%q)", round, want, got)
		}
		if len(h.e.fair.deferred) != 0 {
			t.Fatalf("round %d: still deferred: %v", round, h.e.fair.deferred)
		}
	}
}

// A younger Service that gives way is not lost: the older ones it gave way
// to are queued, and it is queued again once the oldest has had its turn.
func TestAServiceThatGivesWayIsQueuedAgain(t *testing.T) {
	h := fairHarness(t, mutant.Flaws{}, "a", "b")
	h.remove(t, "ns/holder")
	h.woken = nil
	h.sync(t, "ns/b")
	if h.addr("ns/b") != "" || !slices.Equal(h.woken, []string{"ns/a"}) {
		t.Fatalf("b %q, woken %v: b should give way and queue a", h.addr("ns/b"), h.woken)
	}
	h.woken = nil
	h.sync(t, "ns/a")
	if h.addr("ns/a") != "10.0.0.1" || !slices.Equal(h.woken, []string{"ns/b"}) {
		t.Fatalf("a %q, woken %v: a should get the address and queue b again", h.addr("ns/a"), h.woken)
	}
	h.sync(t, "ns/b")
	if w := h.e.waitingKeys(); !slices.Equal(w, []string{"ns/b"}) {
		t.Errorf("waiting %v, want b, told the pool is exhausted", w)
	}
}

// A Service created after the address freed up, synced before the
// Services that were waiting for it, gives way to them too.
func TestANewServiceGivesWayToTheWaitingOnes(t *testing.T) {
	h := fairHarness(t, mutant.Flaws{}, "a")
	h.remove(t, "ns/holder")
	h.f.put(created("new", 10, nil))
	h.sync(t, "ns/new")
	h.sync(t, "ns/a")
	h.sync(t, "ns/new")
	if h.addr("ns/a") != "10.0.0.1" || h.addr("ns/new") != "" {
		t.Errorf("a %q, new %q: the waiting Service should have the address", h.addr("ns/a"), h.addr("ns/new"))
	}
}

// A waiting Service that is gone from the cache owes no turn: the next one
// is not held up waiting for its sync.
func TestAGoneServiceHoldsNoOneUp(t *testing.T) {
	h := fairHarness(t, mutant.Flaws{}, "a", "b")
	h.remove(t, "ns/holder")
	delete(h.f.store, "ns/a")
	delete(h.f.cache, "ns/a") // its sync (which forgets it) has not run yet
	h.sync(t, "ns/b")
	if h.addr("ns/b") != "10.0.0.1" {
		t.Errorf("b %q: a is gone, b should have the address", h.addr("ns/b"))
	}
}

// Requested addresses go oldest first too: two Services ask for the
// address another holds; when it frees up, the older one gets it, even if
// the younger one is synced first.
func TestAContestedRequestIsGrantedToTheOldest(t *testing.T) {
	h := newHarness(t, map[string]string{"cidr-global": "10.6.0.0/29"}, mutant.Flaws{})
	ask := map[string]string{decide.AnnotationLoadBalancerIPs: "10.6.0.1"}
	for i, name := range []string{"holder", "old", "young"} {
		h.f.put(created(name, int64(i+1), ask))
		h.sync(t, "ns/"+name)
	}
	if w := h.e.waitingKeys(); !slices.Equal(w, []string{"ns/old", "ns/young"}) {
		t.Fatalf("waiting %v, want old and young told Conflict", w)
	}
	h.remove(t, "ns/holder")
	h.sync(t, "ns/young")
	h.sync(t, "ns/old")
	h.sync(t, "ns/young")
	granted := func(key string) bool {
		hd, ok := h.e.ledger.Usage().Holding(key)
		return ok && len(hd.Addrs) == 1 && hd.Addrs[0].String() == "10.6.0.1"
	}
	if !granted("ns/old") || granted("ns/young") {
		t.Errorf("old granted %v, young granted %v: the older request should win", granted("ns/old"), granted("ns/young"))
	}
	if w := h.e.waitingKeys(); !slices.Equal(w, []string{"ns/young"}) {
		t.Errorf("waiting %v, want young still told Conflict", w)
	}
}

// addrOf is addr for a Service that may be gone.
func (h *harness) addrOf(key string) string {
	if _, ok := h.f.store[key]; !ok {
		return "(gone)"
	}
	return h.addr(key)
}

// TestWaitingAtStart: a start marks as waiting the Services without an
// address only where their pool has not enough free addresses for all of
// them (there the oldest must go first); where the addresses go round,
// none, so a large install is not served one Service after the other.
func TestWaitingAtStart(t *testing.T) {
	held := func(name, addr string) *corev1.Service {
		return lb(name, map[string]string{decide.AnnotationLoadBalancerIPs: addr})
	}
	ignored := lb("ignored", map[string]string{decide.AnnotationIgnore: "true"})
	for _, tc := range []struct {
		name     string
		config   map[string]string
		services []*corev1.Service
		want     []string
	}{
		{"enough for all", map[string]string{"range-global": "10.0.0.1-10.0.0.9"},
			[]*corev1.Service{held("h", "10.0.0.1"), lb("a", nil), lb("b", nil)}, nil},
		{"exactly enough", map[string]string{"range-global": "10.0.0.1-10.0.0.3"},
			[]*corev1.Service{held("h", "10.0.0.1"), lb("a", nil), lb("b", nil)}, nil},
		{"one short", map[string]string{"range-global": "10.0.0.1-10.0.0.2"},
			[]*corev1.Service{held("h", "10.0.0.1"), lb("a", nil), lb("b", nil)}, []string{"ns/a", "ns/b"}},
		// Counted against every family the pool has, whatever the
		// Services ask for: marking too many only costs speed.
		{"short of IPv6 in a dual-stack pool", map[string]string{"range-global": "10.0.0.1-10.0.0.9,2001:db8::1-2001:db8::1"},
			[]*corev1.Service{lb("a", nil), lb("b", nil)}, []string{"ns/a", "ns/b"}},
		{"not managed, not counted", map[string]string{"range-global": "10.0.0.1-10.0.0.1"},
			[]*corev1.Service{ignored, lb("a", nil)}, nil},
		{"no pool", map[string]string{"range-other": "10.0.0.1-10.0.0.1"},
			[]*corev1.Service{lb("a", nil), lb("b", nil)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := allocator.Parse(tc.config, nil)
			if err != nil {
				t.Fatal(err)
			}
			usage, _ := decide.Rebuild(cfg, tc.services, decide.Options{})
			var got []string
			for k := range waitingAtStart(cfg, usage, tc.services, decide.Options{}) {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("waiting %v, want %v", got, tc.want)
			}
		})
	}
}
