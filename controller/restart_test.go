package controller_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// withProductionClaims turns the claims on with the production grace
// period and repair interval (a minute each): what a test sees within
// seconds is not the repair catching up on old claims.
func withProductionClaims(o *controller.Options) { o.AddressClaims = true }

// Services deleted while no controller ran leave claims younger than the
// grace period. A Service that does not exist can receive no write: the
// controller frees their addresses as it starts, not a minute later.
func TestClaimsOfServicesDeletedWhileDownAreFreedAtStart(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	h := newHarness(t, map[string]string{"range-global": "10.62.0.200-10.62.0.202"})
	h.start(withProductionClaims)
	h.create("a")
	if got := h.addressOf(h.ns, "a"); got != "10.62.0.200" {
		t.Fatalf("a got %q, want 10.62.0.200", got)
	}
	h.create("b")
	if got := h.addressOf(h.ns, "b"); got != "10.62.0.201" {
		t.Fatalf("b got %q, want 10.62.0.201", got)
	}
	h.waitClaim("10.62.0.200", h.ns, "a")
	h.waitClaim("10.62.0.201", h.ns, "b")
	h.stopController()
	h.delete(h.ns, "a")
	h.delete(h.ns, "b")

	h.start(withProductionClaims)
	h.create("asks", withIP("10.62.0.200"))
	if got := h.addressOf(h.ns, "asks"); got != "10.62.0.200" {
		t.Fatalf("asks got %q, want the 10.62.0.200 it asked for", got)
	}
	h.create("next")
	if got := h.addressOf(h.ns, "next"); got != "10.62.0.201" {
		t.Fatalf("next got %q, want 10.62.0.201, freed at start", got)
	}
	h.waitClaim("10.62.0.200", h.ns, "asks")
	h.waitClaim("10.62.0.201", h.ns, "next")
}

// A running controller's repair frees a claim of ours younger than the
// grace period at once when its Service does not exist, or exists but was
// created after the claim (deleted and created again: not the Service the
// claim was made for) and does not carry the address.
func TestYoungClaimsOfGoneOrRecreatedServicesAreFreed(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	h := newHarness(t, map[string]string{"range-global": "10.63.0.5-10.63.0.9"})
	h.start(func(o *controller.Options) {
		o.AddressClaims = true
		o.RepairInterval = 200 * time.Millisecond // the grace period stays a minute
	})
	putClaim(t, "10.63.0.5", engine.ManagedBy, h.ns, "never")
	putClaim(t, "10.63.0.6", engine.ManagedBy, h.ns, "again")
	time.Sleep(1100 * time.Millisecond) // "again" is created a second after its claim
	h.create("again", func(s *corev1.Service) {
		s.Spec.Type, s.Spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeClusterIP, nil
	})
	h.waitClaim("10.63.0.5", "", "")
	h.waitClaim("10.63.0.6", "", "")
	h.create("first")
	if got := h.addressOf(h.ns, "first"); got != "10.63.0.5" {
		t.Fatalf("first got %q, want the freed 10.63.0.5", got)
	}
	h.create("second", withIP("10.63.0.6"))
	if got := h.addressOf(h.ns, "second"); got != "10.63.0.6" {
		t.Fatalf("second got %q, want the freed 10.63.0.6 it asked for", got)
	}
	h.waitClaim("10.63.0.5", h.ns, "first")
	h.waitClaim("10.63.0.6", h.ns, "second")
	if a := h.get(h.ns, "again").Annotations[decide.AnnotationLoadBalancerIPs]; a != "" {
		t.Fatalf("again, a ClusterIP Service, carries %q", a)
	}
}

// Two Services share an address and one is deleted while no controller
// runs: the shared claim still names it after the start (its other sharer
// is there, so the claim is no orphan). When the last sharer gives the
// address up, the claim goes too rather than stay behind for a Service
// that does not exist, and the next Service gets that address at once.
func TestClaimOfASharerDeletedWhileDownGoesWithTheLastSharer(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	const addr = "10.66.0.1"
	h := newHarness(t, map[string]string{"range-global": addr + "-10.66.0.2", "allow-share-global": "true"})
	h.start(withProductionClaims)
	h.create("a", ports("80/TCP"))
	if got := h.addressOf(h.ns, "a"); got != addr {
		t.Fatalf("a got %q, want %s", got, addr)
	}
	h.create("b", ports("81/TCP"))
	if got := h.addressOf(h.ns, "b"); got != addr {
		t.Fatalf("b got %q, want the shared %s", got, addr)
	}
	h.waitClaim(addr, h.ns, "a")
	h.waitSharers(addr, h.ns+"/b")
	h.stopController()
	h.delete(h.ns, "a")

	h.start(withProductionClaims)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := h.get(h.ns, "b")
		s.Spec.Type, s.Spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeClusterIP, nil
		_, err := client.CoreV1().Services(h.ns).Update(context.Background(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("turn b into a ClusterIP Service: %v", err)
	}
	h.waitClaim(addr, "", "")
	h.create("c", ports("80/TCP"))
	if got := h.addressOf(h.ns, "c"); got != addr {
		t.Fatalf("c got %q, want %s, freed with its last sharer", got, addr)
	}
	h.waitClaim(addr, h.ns, "c")
}

// The Services waiting for an address are known only in memory: the start
// rebuilds them, so an address freed while no controller ran goes to the
// oldest of them, not to the first its eight workers happen to sync.
func TestOldestWaitingServedFirstAfterARestart(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	const addr = "10.67.0.1"
	h := newHarness(t, map[string]string{"range-global": addr + "-" + addr})
	h.start(withProductionClaims)
	h.create("holder")
	if got := h.addressOf(h.ns, "holder"); got != addr {
		t.Fatalf("holder got %q, want %s", got, addr)
	}
	// Oldest first by creation time (a second's resolution), names in the
	// other order.
	for i, name := range []string{"z", "m", "a"} {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond)
		}
		h.create(name)
	}
	h.waitEvent(h.ns, "Service", "a", decide.ReasonAllocationFailed, "PoolExhausted")
	h.stopController()
	h.delete(h.ns, "holder")

	h.start(func(o *controller.Options) { o.AddressClaims = true; o.Workers = 8 })
	if got := h.addressOf(h.ns, "z"); got != addr {
		t.Fatalf("z, the oldest waiting, got %q, want %s", got, addr)
	}
	for _, name := range []string{"m", "a"} {
		if a := h.get(h.ns, name).Annotations[decide.AnnotationLoadBalancerIPs]; a != "" {
			t.Fatalf("%s, younger than z, got %q", name, a)
		}
	}
}
