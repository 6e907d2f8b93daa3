package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// withClaims turns the claims on, with a repair every 200ms and a grace
// period of half a second, so that the repair's cases show in a test.
func withClaims(o *controller.Options) {
	o.AddressClaims = true
	o.RepairInterval = 200 * time.Millisecond
	o.ClaimGrace = 500 * time.Millisecond
}

// putClaim creates the IPAddress addr, managed by manager, whose parent is
// the Service ns/name; it is deleted when the test ends.
func putClaim(t *testing.T, addr, manager, ns, name string) {
	t.Helper()
	ip := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: addr, Labels: map[string]string{networkingv1.LabelManagedBy: manager}},
		Spec:       networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: ns, Name: name}},
	}
	if _, err := client.NetworkingV1().IPAddresses().Create(context.Background(), ip, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create IPAddress %s: %v", addr, err)
	}
	t.Cleanup(func() {
		_ = client.NetworkingV1().IPAddresses().Delete(context.Background(), addr, metav1.DeleteOptions{})
	})
}

// claimParent returns the parent ("namespace/name") and manager of the
// IPAddress addr; found is false when there is none.
func claimParent(addr string) (parent, manager string, found bool, err error) {
	ip, err := client.NetworkingV1().IPAddresses().Get(context.Background(), addr, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	if p := ip.Spec.ParentRef; p != nil && p.Group == "" && p.Resource == "services" {
		parent = p.Namespace + "/" + p.Name
	}
	return parent, ip.Labels[networkingv1.LabelManagedBy], true, nil
}

// waitClaim waits until addr is claimed by us for the Service ns/name
// (name "": until addr has no claim at all).
func (h *harness) waitClaim(addr, ns, name string) {
	h.t.Helper()
	want := "no claim"
	if name != "" {
		want = "claimed for " + ns + "/" + name
	}
	h.eventually(15*time.Second, addr+" "+want, func() (bool, string) {
		parent, manager, found, err := claimParent(addr)
		switch {
		case err != nil:
			return false, err.Error()
		case !found:
			return name == "", "no claim"
		}
		return name != "" && manager == engine.ManagedBy && parent == ns+"/"+name,
			fmt.Sprintf("claimed for %q by %q", parent, manager)
	})
}

// annotated creates a Service that already carries addr, as one the
// controller (or an older one) assigned before.
func (h *harness) annotated(name, addr string, opts ...svcOpt) {
	h.t.Helper()
	h.create(name, append([]svcOpt{withAnnotation(decide.AnnotationLoadBalancerIPs, addr), withIP(addr)}, opts...)...)
}

// A claim of ours whose Service is gone is deleted by the repair; the
// address is then handed out again.
func TestRepairDeletesTheClaimOfAGoneService(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	h := newHarness(t, map[string]string{"range-global": "10.60.0.5-10.60.0.5"})
	putClaim(t, "10.60.0.5", engine.ManagedBy, h.ns, "gone")
	h.start(withClaims)
	h.waitClaim("10.60.0.5", "", "")
	h.create("next")
	if got := h.addressOf(h.ns, "next"); got != "10.60.0.5" {
		t.Fatalf("next got %q, want the freed 10.60.0.5", got)
	}
	h.waitClaim("10.60.0.5", h.ns, "next")
}

// A claim of ours whose Service no longer holds the address: deleted when
// nobody holds it, moved (deleted, then created for the holder) when
// another Service of ours holds it now; the holder is never told its own
// address is in conflict.
func TestRepairDeletesOrMovesTheClaimOfAServiceThatNoLongerHoldsIt(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	h := newHarness(t, map[string]string{"range-global": "10.61.0.5-10.61.0.9"})
	h.annotated("a", "10.61.0.5")
	h.annotated("b", "10.61.0.6")
	putClaim(t, "10.61.0.5", engine.ManagedBy, h.ns, "b") // a holds it
	putClaim(t, "10.61.0.7", engine.ManagedBy, h.ns, "a") // nobody holds it
	time.Sleep(time.Second)                               // older than the grace period: stale
	h.start(withClaims)
	h.waitClaim("10.61.0.5", h.ns, "a")
	h.waitClaim("10.61.0.7", "", "")
	h.waitClaim("10.61.0.6", h.ns, "b")
	for _, e := range events(h.ns, "Service", "a") {
		if e.Reason == decide.ReasonAllocationFailed {
			t.Errorf("a, which holds its address, was told %s: %s", e.Reason, e.Message)
		}
	}
}

// Addresses held without a claim (given out while claims were off) get
// one once the controller runs with claims.
func TestRepairClaimsAddressesHeldWithoutAClaim(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	h := newHarness(t, map[string]string{"range-global": "10.62.0.5-10.62.0.9"})
	h.start(nil) // claims off
	h.create("a")
	h.create("b")
	addrs := map[string]string{"a": h.addressOf(h.ns, "a"), "b": h.addressOf(h.ns, "b")}
	for name, a := range addrs {
		if _, _, found, err := claimParent(a); err != nil || found {
			t.Fatalf("%s's %s claimed with claims off (%v)", name, a, err)
		}
	}
	h.stopController()
	h.start(withClaims)
	for name, a := range addrs {
		h.waitClaim(a, h.ns, name)
	}
}

// A claim by another manager for an address a managed Service carries is
// reported: a Warning AddressClaimConflict on the Service, and the metric
// kube_vip_cloud_provider_address_claim_conflicts. (A managed-by label value
// cannot hold a "/": the other manager is other.example.com.)
func TestRepairReportsAnotherManagersClaim(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	h := newHarness(t, map[string]string{"range-global": "10.63.0.5-10.63.0.9"})
	h.annotated("a", "10.63.0.5")
	putClaim(t, "10.63.0.5", "other.example.com", "elsewhere", "theirs")
	h.start(withClaims)
	ev := h.waitEvent(h.ns, "Service", "a", decide.ReasonAddressClaimConflict, "10.63.0.5")
	if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "other.example.com") {
		t.Fatalf("Event %s %q, want a Warning naming the other manager", ev.Type, ev.Message)
	}
	h.eventually(10*time.Second, "the conflicts metric at 1", func() (bool, string) {
		v, err := gauge(h, "kube_vip_cloud_provider_address_claim_conflicts")
		return err == nil && v == 1, fmt.Sprintf("%v (%v)", v, err)
	})
	// It stays there across repairs, once the Service has been decided
	// (and lost the address in the ledger to the other claim).
	for i := 0; i < 10; i++ {
		time.Sleep(100 * time.Millisecond)
		if v, err := gauge(h, "kube_vip_cloud_provider_address_claim_conflicts"); err != nil || v != 1 {
			t.Fatalf("the conflicts metric fell to %v (%v) while the other claim stands", v, err)
		}
	}
	if _, manager, _, _ := claimParent("10.63.0.5"); manager != "other.example.com" {
		t.Fatalf("the other manager's claim was replaced (managed by %q now)", manager)
	}
	if got := h.get(h.ns, "a").Annotations[decide.AnnotationLoadBalancerIPs]; got != "10.63.0.5" {
		t.Fatalf("a carries %q now, want its 10.63.0.5 kept", got)
	}
	// Once the other claim is gone, the conflict is over: the address is
	// claimed for a, and the metric falls back to 0.
	if err := client.NetworkingV1().IPAddresses().Delete(context.Background(), "10.63.0.5", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitClaim("10.63.0.5", h.ns, "a")
	h.eventually(10*time.Second, "the conflicts metric at 0", func() (bool, string) {
		v, err := gauge(h, "kube_vip_cloud_provider_address_claim_conflicts")
		return err == nil && v == 0, fmt.Sprintf("%v (%v)", v, err)
	})
}

// gauge reads a gauge without labels from the harness's registry.
func gauge(h *harness, name string) (float64, error) {
	mfs, err := h.registry.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue(), nil
		}
	}
	return 0, fmt.Errorf("no gauge %s", name)
}

// A ClusterIP in the pool (the API server claims it, managed by
// ipallocator.k8s.io) is never handed out, and a Service that asks for it
// is told AllocationFailed, a Conflict whose message says the pool
// overlaps the service CIDR.
func TestClusterIPInThePoolIsNeverHandedOut(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	const cip = "10.96.250.5" // in the suite's service CIDR, 10.96.0.0/16
	h := newHarness(t, map[string]string{"range-global": "10.96.250.5-10.96.250.7"})
	if _, err := client.CoreV1().Services(h.ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: h.ns},
		Spec:       corev1.ServiceSpec{ClusterIP: cip, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, manager, found, err := claimParent(cip); err != nil || !found || manager != engine.ClusterIPManager {
		t.Fatalf("IPAddress %s: managed by %q, found %v, %v: want the API server's claim", cip, manager, found, err)
	}
	h.start(withClaims)
	h.create("first")
	if got := h.addressOf(h.ns, "first"); got == cip {
		t.Fatalf("first was given the ClusterIP %s", cip)
	}
	h.create("asks", withAnnotation(decide.AnnotationLoadBalancerIPs, cip))
	ev := h.waitEvent(h.ns, "Service", "asks", decide.ReasonAllocationFailed, "Conflict")
	if !strings.Contains(ev.Message, "the pool overlaps the service CIDR") {
		t.Fatalf("AllocationFailed %q does not say the pool overlaps the service CIDR", ev.Message)
	}
	if _, manager, _, _ := claimParent(cip); manager != engine.ClusterIPManager {
		t.Fatalf("the ClusterIP's IPAddress is managed by %q now", manager)
	}
}

// A shared address (allow-share) has one claim, parented by its first
// holder; when that one is deleted the claim moves to the next holder.
func TestSharedAddressClaimMovesToTheNextHolder(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	const addr = "10.64.0.5"
	h := newHarness(t, map[string]string{"range-global": addr + "-" + addr, "allow-share-global": "true"})
	h.start(withClaims)
	h.create("first", ports("80/TCP"))
	if got := h.addressOf(h.ns, "first"); got != addr {
		t.Fatalf("first got %q", got)
	}
	h.waitClaim(addr, h.ns, "first")
	h.create("second", ports("443/TCP"))
	if got := h.addressOf(h.ns, "second"); got != addr {
		t.Fatalf("second got %q, want the shared %s", got, addr)
	}
	h.waitSharers(addr, h.ns+"/second")
	h.create("third", ports("8080/TCP"))
	if got := h.addressOf(h.ns, "third"); got != addr {
		t.Fatalf("third got %q, want the shared %s", got, addr)
	}
	h.waitSharers(addr, h.ns+"/second", h.ns+"/third")
	// Still the first holder's, past a few repairs.
	time.Sleep(time.Second)
	h.waitClaim(addr, h.ns, "first")
	h.delete(h.ns, "first")
	h.waitClaim(addr, h.ns, "second")
	h.waitSharers(addr, h.ns+"/third")
	h.delete(h.ns, "third")
	h.waitClaim(addr, h.ns, "second")
	h.waitSharers(addr)
}

// waitSharers waits until the claim of addr records exactly sharers, in
// that order.
func (h *harness) waitSharers(addr string, sharers ...string) {
	h.t.Helper()
	want := strings.Join(sharers, ",")
	h.eventually(15*time.Second, fmt.Sprintf("the claim of %s recording sharers %q", addr, want), func() (bool, string) {
		ip, err := client.NetworkingV1().IPAddresses().Get(context.Background(), addr, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		got := ip.Annotations[engine.SharersAnnotation]
		return got == want, fmt.Sprintf("%s=%q", engine.SharersAnnotation, got)
	})
}

// A Service the user moves off its address gives up that address's claim
// at once, not after the repair's grace period: a Service waiting for the
// address is granted it.
func TestMovedServiceReleasesItsClaimAtOnce(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	h := newHarness(t, map[string]string{"range-global": "10.65.0.5-10.65.0.9"})
	h.start(func(o *controller.Options) {
		o.AddressClaims = true
		o.RepairInterval = time.Hour
		o.ClaimGrace = time.Hour
	})
	h.create("first", withAnnotation(decide.AnnotationLoadBalancerIPs, "10.65.0.5"))
	h.waitClaim("10.65.0.5", h.ns, "first")
	h.create("second", withAnnotation(decide.AnnotationLoadBalancerIPs, "10.65.0.5"))
	h.waitEvent(h.ns, "Service", "second", decide.ReasonAllocationFailed, "Conflict")
	s := h.get(h.ns, "first")
	s.Annotations[decide.AnnotationLoadBalancerIPs] = "10.65.0.6"
	s.Spec.LoadBalancerIP = "10.65.0.6"
	if _, err := client.CoreV1().Services(h.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// (10.65.0.6, which the user wrote, is claimed by the next repair: no
	// write of ours goes out for first.)
	h.waitClaim("10.65.0.5", h.ns, "second")
	h.waitEvent(h.ns, "Service", "second", decide.ReasonAddressAssigned, "10.65.0.5")
}

// A claim that names a sharer the controller does not see on the address
// (another controller let it in; its write is on its way) counts: a
// Service asking to share the address with colliding ports is refused,
// not let in beside it. (With sharers left off the claim, the newcomer is
// given the address: two Services on one port.)
func TestClaimedSharerUnseenInTheCacheIsRespected(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	const addr, other = "10.66.0.5", "10.66.0.6"
	h := newHarness(t, map[string]string{"range-global": addr + "-" + other, "allow-share-global": "true"})
	h.start(func(o *controller.Options) {
		withClaims(o)
		o.ClaimGrace = time.Hour // every claim here is young: a write may be on its way
	})
	h.create("first", ports("80/TCP"), withAnnotation(decide.AnnotationLoadBalancerIPs, addr))
	h.waitClaim(addr, h.ns, "first")
	h.create("ghost", ports("8080/TCP"), withAnnotation(decide.AnnotationLoadBalancerIPs, other))
	h.waitClaim(other, h.ns, "ghost")
	// Another controller let ghost in on addr: its claim now names ghost.
	ctx := context.Background()
	if err := client.NetworkingV1().IPAddresses().Delete(ctx, addr, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ip := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: addr, Labels: map[string]string{networkingv1.LabelManagedBy: engine.ManagedBy},
			Annotations: map[string]string{engine.SharersAnnotation: h.ns + "/ghost"}},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: h.ns, Name: "first"}},
	}
	if _, err := client.NetworkingV1().IPAddresses().Create(ctx, ip, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitSharers(addr, h.ns+"/ghost")
	h.create("newcomer", ports("8080/TCP"), withAnnotation(decide.AnnotationLoadBalancerIPs, addr))
	ev := h.waitEvent(h.ns, "Service", "newcomer", decide.ReasonAllocationFailed, "Conflict")
	if !strings.Contains(ev.Message, h.ns+"/ghost") {
		t.Errorf("the Conflict does not name the claimed sharer: %q", ev.Message)
	}
	time.Sleep(time.Second)
	h.waitSharers(addr, h.ns+"/ghost")
	if got := h.get(h.ns, "newcomer").Status.LoadBalancer.Ingress; len(got) > 0 {
		t.Errorf("newcomer is served on %v", got)
	}
}
