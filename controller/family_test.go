package controller_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// A single-stack Service asking for an address of the other family is
// refused as the API server's own families would refuse it: a Warning
// naming the Service, the address and its ipFamilies, and nothing written.
// A dual-stack Service gets one address of each family.
func TestARequestOfTheOtherFamilyIsRefused(t *testing.T) {
	h := newHarness(t, map[string]string{"range-global": "10.64.0.1-10.64.0.9,2001:db8:64::1-2001:db8:64::9"})
	h.start(nil)
	h.create("v4-asks-v6", withIP("2001:db8:64::5"))
	h.create("v4-annotated-v6", withAnnotation(decide.AnnotationLoadBalancerIPs, "2001:db8:64::6"))
	h.create("v6-asks-v4", dualStack(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol), withIP("10.64.0.4"))
	h.create("dual", dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol),
		withAnnotation(decide.AnnotationLoadBalancerIPs, "10.64.0.7,2001:db8:64::7"))

	for _, c := range []struct{ name, addr, fam, families string }{
		{"v4-asks-v6", "2001:db8:64::5", "IPv6", "IPv4"},
		{"v4-annotated-v6", "2001:db8:64::6", "IPv6", "IPv4"},
		{"v6-asks-v4", "10.64.0.4", "IPv4", "IPv6"},
	} {
		h.waitEvent(h.ns, "Service", c.name, decide.ReasonAllocationFailed, fmt.Sprintf(
			"InvalidRequest: address %s is %s, but Service %s/%s is SingleStack with ipFamilies [%s]", c.addr, c.fam, h.ns, c.name, c.families))
	}
	h.eventually(15*time.Second, "dual marked as ours", func() (bool, string) {
		s := h.get(h.ns, "dual")
		return s.Labels[decide.LabelImplementation] == decide.ImplementationKubeVIP, fmt.Sprintf("labels %v", s.Labels)
	})
	if got := h.get(h.ns, "dual").Annotations[decide.AnnotationLoadBalancerIPs]; got != "10.64.0.7,2001:db8:64::7" {
		t.Errorf("dual carries %q, want 10.64.0.7,2001:db8:64::7", got)
	}
	// Nothing written to the refused ones: no annotation filled in from
	// spec.loadBalancerIP, no label marking an address given.
	for _, name := range []string{"v4-asks-v6", "v4-annotated-v6", "v6-asks-v4"} {
		s := h.get(h.ns, name)
		if s.Labels[decide.LabelImplementation] != "" || (s.Spec.LoadBalancerIP != "" && s.Annotations[decide.AnnotationLoadBalancerIPs] != "") {
			t.Errorf("%s was written: labels %v, annotations %v", name, s.Labels, s.Annotations)
		}
	}
}
