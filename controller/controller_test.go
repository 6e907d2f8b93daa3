package controller_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

func TestAssignsAddressAndWritesTheContract(t *testing.T) {
	h := newHarness(t, map[string]string{"cidr-global": "192.0.2.0/29", "interface-global": "eth1"})
	h.start(nil)
	h.create("web")
	got := h.addressOf(h.ns, "web")
	if got != "192.0.2.1" {
		t.Fatalf("address = %q, want 192.0.2.1 (lowest, .0 skipped)", got)
	}
	s := h.get(h.ns, "web")
	if s.Spec.LoadBalancerIP != "192.0.2.1" {
		t.Errorf("spec.loadBalancerIP = %q, want 192.0.2.1", s.Spec.LoadBalancerIP)
	}
	if s.Labels[decide.LabelImplementation] != "kube-vip" {
		t.Errorf("label implementation = %q, want kube-vip", s.Labels[decide.LabelImplementation])
	}
	if s.Annotations[decide.AnnotationServiceInterface] != "eth1" {
		t.Errorf("annotation %s = %q, want eth1", decide.AnnotationServiceInterface, s.Annotations[decide.AnnotationServiceInterface])
	}
	if len(s.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("status.loadBalancer written (%v): that is kube-vip's job", s.Status.LoadBalancer.Ingress)
	}
	h.waitEvent(h.ns, "Service", "web", decide.ReasonAddressAssigned, "192.0.2.1")
}

func TestBurstGetsDistinctAddresses(t *testing.T) {
	const n = 500
	h := newHarness(t, map[string]string{"cidr-global": "10.20.0.0/22"})
	h.start(func(o *controller.Options) { o.Workers = 8 })
	h.createBurst(n, nil)
	assertAllDistinct(t, h, n, func(a netip.Addr) bool { return netip.MustParsePrefix("10.20.0.0/22").Contains(a) })
}

// assertAllDistinct waits until n Services of the namespace have an address
// and checks no two share one.
func assertAllDistinct(t *testing.T, h *harness, n int, inPool func(netip.Addr) bool) map[string]string {
	t.Helper()
	var byName map[string]string
	h.eventually(60*time.Second, fmt.Sprintf("%d Services with addresses", n), func() (bool, string) {
		list, err := client.CoreV1().Services(h.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		byName = map[string]string{}
		for _, s := range list.Items {
			if a := s.Annotations[decide.AnnotationLoadBalancerIPs]; a != "" {
				byName[s.Name] = a
			}
		}
		return len(byName) == n, fmt.Sprintf("%d of %d", len(byName), n)
	})
	seen := map[string]string{}
	for name, a := range byName {
		if other, dup := seen[a]; dup {
			t.Fatalf("address %s given to both %s and %s", a, other, name)
		}
		seen[a] = name
		if inPool != nil && !inPool(netip.MustParseAddr(a)) {
			t.Errorf("%s got %s, outside its pool", name, a)
		}
	}
	return byName
}

func TestExhaustionThenDeleteFreesAddress(t *testing.T) {
	h := newHarness(t, map[string]string{"range-global": "192.0.2.10-192.0.2.11"})
	// A back-off of a minute: only the immediate retry on a freed address
	// (or a new ConfigMap) can give the waiting Service its address in time.
	h.start(func(o *controller.Options) { o.RetryBaseDelay, o.RetryMaxDelay = time.Minute, time.Minute })
	h.create("a")
	h.create("b")
	a, b := h.addressOf(h.ns, "a"), h.addressOf(h.ns, "b")
	if a == b {
		t.Fatalf("a and b both got %s", a)
	}
	h.create("c")
	h.waitEvent(h.ns, "Service", "c", decide.ReasonAllocationFailed, "PoolExhausted")
	if got := h.get(h.ns, "c").Annotations[decide.AnnotationLoadBalancerIPs]; got != "" {
		t.Fatalf("c got %q from an exhausted pool", got)
	}
	h.delete(h.ns, "a")
	if got := h.addressOf(h.ns, "c"); got != a {
		t.Fatalf("c got %q, want the freed %s", got, a)
	}
}

func TestOverlappingPoolsNeverDoubleAllocate(t *testing.T) {
	h := newHarness(t, nil)
	other := h.ns + "-b"
	if _, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deleteServices(other)
	})
	// The namespace pool lies inside the global pool that the other
	// namespace draws from.
	h.setConfig(map[string]string{
		"cidr-global":        "198.51.100.0/28",
		"range-" + h.ns:      "198.51.100.1-198.51.100.4",
		"range-unrelated-ns": "198.51.100.3-198.51.100.9",
	})
	h.start(nil)
	// The namespace's own Services fill its pool first; then the global
	// Services must get none of those addresses, although the global pool
	// contains them.
	seen := map[string]string{}
	claim := func(ns, name string) string {
		a := h.addressOf(ns, name)
		if prev, dup := seen[a]; dup {
			t.Fatalf("address %s given to both %s and %s/%s", a, prev, ns, name)
		}
		seen[a] = ns + "/" + name
		return a
	}
	for i := 0; i < 4; i++ {
		h.create(fmt.Sprintf("own%d", i))
	}
	for i := 0; i < 4; i++ {
		a := claim(h.ns, fmt.Sprintf("own%d", i))
		if !netip.MustParsePrefix("198.51.100.0/29").Contains(netip.MustParseAddr(a)) {
			t.Errorf("own%d got %s outside its pool", i, a)
		}
	}
	for i := 0; i < 6; i++ {
		h.create(fmt.Sprintf("glob%d", i), inNamespace(other))
	}
	for i := 0; i < 6; i++ {
		claim(other, fmt.Sprintf("glob%d", i))
	}
	// And interleaved: one more of each, the namespace pool now full.
	h.create("own-late")
	h.waitEvent(h.ns, "Service", "own-late", decide.ReasonAllocationFailed, "PoolExhausted")
}

func TestRequestedAddressKeptAndConflictReported(t *testing.T) {
	h := newHarness(t, map[string]string{"cidr-global": "192.0.2.64/28"})
	h.start(nil)
	h.create("fixed", withIP("192.0.2.70"))
	if got := h.addressOf(h.ns, "fixed"); got != "192.0.2.70" {
		t.Fatalf("fixed = %q, want its own 192.0.2.70", got)
	}
	if lbl := h.get(h.ns, "fixed").Labels[decide.LabelImplementation]; lbl != decide.ImplementationKubeVIP {
		t.Errorf("a kept address is labelled implementation=%q, want kube-vip (as the existing provider)", lbl)
	}
	h.waitEvent(h.ns, "Service", "fixed", decide.ReasonAddressAssigned, "192.0.2.70, as requested in spec.loadBalancerIP")
	// Outside every pool: allowed, reported.
	h.create("outside", withAnnotation(decide.AnnotationLoadBalancerIPs, "203.0.113.5"))
	h.waitEvent(h.ns, "Service", "outside", decide.ReasonAddressOutsidePool, "203.0.113.5")
	// Same address, same port: the later one is refused and keeps its request.
	h.create("clash", withIP("192.0.2.70"))
	h.waitEvent(h.ns, "Service", "clash", decide.ReasonAllocationFailed, "Conflict")
	s := h.get(h.ns, "clash")
	if s.Spec.LoadBalancerIP != "192.0.2.70" || s.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
		t.Fatalf("clash was changed: spec %q annotation %q", s.Spec.LoadBalancerIP, s.Annotations[decide.AnnotationLoadBalancerIPs])
	}
	// Automatic allocation never hands out the requested address.
	for i := 0; i < 5; i++ {
		h.create(fmt.Sprintf("auto%d", i))
		if a := h.addressOf(h.ns, fmt.Sprintf("auto%d", i)); a == "192.0.2.70" {
			t.Fatalf("auto%d was given the requested address", i)
		}
	}
}
