package e2e

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// The specs of issue #12's "changes after assignment", on the real binary.
// Offsets 128 and up of the cluster's IPv4 pool are theirs.

// dualPool is a namespace pool of n IPv4 addresses from offset and the
// cluster's IPv6 range; it skips the spec when there is no IPv6 range.
func dualPool(t *testing.T, offset, n int) string {
	_, v6 := cl.Pools()
	if v6 == "" {
		t.Skipf("the %s cluster has no IPv6 Service range", cl.Name())
	}
	return span(offset, n) + "," + v6
}

// A SingleStack Service turned RequireDualStack keeps its IPv4 address and
// gets an IPv6 one; turned back to SingleStack, the IPv6 one is released.
// (Before: it kept one IPv4 address, with no Event; and a dual-stack
// Service made SingleStack kept its IPv6 address in the annotation, which
// kube-vip goes on advertising.)
func TestChangesFamilyPolicyFollowed(t *testing.T) {
	s := newSpec(t, map[string]string{"range-NS": dualPool(t, 128, 4)})
	v4 := s.address1(s.create("svc", port(80, corev1.ProtocolTCP)).Name)
	s.patch("svc", map[string]any{"spec": map[string]any{"ipFamilyPolicy": "RequireDualStack", "ipFamilies": []string{"IPv4", "IPv6"}}})
	s.g.Eventually(func() []netip.Addr { return s.address("svc") }, 10*time.Second).Should(HaveLen(2))
	both := s.address("svc")
	s.g.Expect(both[0]).To(Equal(v4), "the IPv4 address moved")
	s.g.Expect(both[1].Is6()).To(BeTrue())
	s.waitEvent(s.ns, "svc", decide.ReasonAddressAssigned, 5*time.Second, "added "+both[1].String())

	svc := s.get("svc")
	s.patch("svc", map[string]any{"spec": map[string]any{"ipFamilyPolicy": "SingleStack", "ipFamilies": []string{"IPv4"},
		"clusterIPs": []string{svc.Spec.ClusterIPs[0]}}})
	s.g.Eventually(func() string { return s.annotation("svc") }, 10*time.Second).Should(Equal(v4.String()))
	s.waitEvent(s.ns, "svc", decide.ReasonAddressReleased, 5*time.Second, "released "+both[1].String())
}

// A PreferDualStack Service that fell back to IPv4 is upgraded, without
// moving, once the pool gains IPv6; the FamilyUnavailable warning is not
// its last word.
func TestChangesPreferDualStackUpgraded(t *testing.T) {
	_ = dualPool(t, 132, 1) // skips without IPv6
	s := newSpec(t, map[string]string{"range-NS": span(132, 4)})
	v4 := s.address1(s.create("pref", port(80, corev1.ProtocolTCP),
		family(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)).Name)
	s.waitEvent(s.ns, "pref", decide.ReasonAllocationFailed, 5*time.Second, "FamilyUnavailable")
	s.config(map[string]string{"range-NS": dualPool(t, 132, 4)})
	s.g.Eventually(func() []netip.Addr { return s.address("pref") }, 10*time.Second).Should(HaveLen(2))
	s.g.Expect(s.address("pref")[0]).To(Equal(v4))
	s.waitEvent(s.ns, "pref", decide.ReasonAddressAssigned, 5*time.Second, "added")
}

// The user moves the annotation: spec.loadBalancerIP, which the controller
// wrote, follows, so that a later Service cannot be given the old address
// while the first still names it. (Before: both ended up with
// spec.loadBalancerIP naming the old address, with no Event.)
func TestChangesLoadBalancerIPFollowsTheAnnotation(t *testing.T) {
	s := newSpec(t, map[string]string{"range-NS": span(136, 5)})
	first := s.address1(s.create("i3", port(80, corev1.ProtocolTCP)).Name)
	moved := at(140)
	s.patch("i3", map[string]any{"metadata": map[string]any{"annotations": map[string]any{decide.AnnotationLoadBalancerIPs: moved.String()}}})
	s.g.Eventually(func() string { return s.get("i3").Spec.LoadBalancerIP }, 10*time.Second).Should(Equal(moved.String()))
	s.waitEvent(s.ns, "i3", decide.ReasonAddressAssigned, 5*time.Second, "spec.loadBalancerIP set to "+moved.String())
	got := s.address1(s.create("i5", port(80, corev1.ProtocolTCP)).Name)
	s.g.Expect(got).To(Equal(first), "the freed address goes to the next Service")
	s.g.Expect(s.get("i3").Spec.LoadBalancerIP).NotTo(Equal(first.String()))
}

// A Conflict on an address a Service carries clears with an Event that
// says so, and an address given by sharing names who it is shared with.
func TestChangesConflictClearedAndSharingNamed(t *testing.T) {
	h := at(144)
	s := newSpec(t, map[string]string{"range-NS": span(144, 4), "allow-share-NS": "true"})
	s.create("web", port(80, corev1.ProtocolTCP), annotated(decide.AnnotationLoadBalancerIPs, h.String()))
	s.waitEvent(s.ns, "web", decide.ReasonAddressAssigned, 10*time.Second, h.String())
	s.create("dns", port(53, corev1.ProtocolUDP))
	ev := s.waitEvent(s.ns, "dns", decide.ReasonAddressAssigned, 10*time.Second, "sharing")
	s.g.Expect(ev.Message).To(ContainSubstring("with " + s.ns + "/web"))

	s.create("late", port(80, corev1.ProtocolTCP), annotated(decide.AnnotationLoadBalancerIPs, h.String()))
	s.waitEvent(s.ns, "late", decide.ReasonAllocationFailed, 10*time.Second, "Conflict")
	s.g.Expect(cl.Client().CoreV1().Services(s.ns).Delete(context.Background(), "web", metav1.DeleteOptions{})).To(Succeed())
	s.g.Eventually(func() []corev1.Event {
		var out []corev1.Event
		for _, e := range eventsAbout(s.ns, "late") {
			if e.Reason == decide.ReasonAddressAssigned {
				out = append(out, e)
			}
		}
		return out
	}, 10*time.Second).ShouldNot(BeEmpty(), "no Normal Event after the conflict cleared: %s", describe(eventsAbout(s.ns, "late")))
}

// A change of interface-<ns> reaches the Services that already have an
// address.
func TestChangesInterfaceReachesAssignedServices(t *testing.T) {
	s := newSpec(t, map[string]string{"range-NS": span(148, 2), "interface-NS": "eth1"})
	s.address1(s.create("a", port(80, corev1.ProtocolTCP)).Name)
	s.g.Expect(s.get("a").Annotations[decide.AnnotationServiceInterface]).To(Equal("eth1"))
	s.config(map[string]string{"range-NS": span(148, 2), "interface-NS": "eth2"})
	s.g.Eventually(func() string { return s.get("a").Annotations[decide.AnnotationServiceInterface] }, 10*time.Second).Should(Equal("eth2"))
	s.g.Expect(strings.Contains(s.annotation("a"), ",")).To(BeFalse())
}
