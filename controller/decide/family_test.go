package decide

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// A single-stack Service asking for an address of the family it does not
// have is refused, as the API server's own families would refuse it: a
// Warning naming the Service, the address and its ipFamilies, and nothing
// written. A dual-stack Service may ask for one address of each family.
func TestDecideRefusesARequestOfTheOtherFamily(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.1-192.0.2.9,2001:db8::1-2001:db8::9"})
	v4 := dualStack(corev1.IPFamilyPolicySingleStack, corev1.IPv4Protocol)
	v6 := dualStack(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)
	tests := []struct {
		name string
		svc  *corev1.Service
		// refused: the substring of the Warning's message; "" when granted.
		refused string
		// addrs: the annotation written when granted.
		addrs string
	}{
		{name: "IPv4 SingleStack asks for IPv6 in spec.loadBalancerIP", svc: svc("ns", "a", v4, lbIP("2001:db8::5")),
			refused: "address 2001:db8::5 is IPv6, but Service ns/a is SingleStack with ipFamilies [IPv4]"},
		{name: "IPv4 SingleStack asks for IPv6 in the annotation", svc: svc("ns", "a", v4, annotated(AnnotationLoadBalancerIPs, "2001:db8::5")),
			refused: "address 2001:db8::5 is IPv6, but Service ns/a is SingleStack with ipFamilies [IPv4]"},
		{name: "IPv6 SingleStack asks for IPv4", svc: svc("ns", "b", v6, lbIP("192.0.2.5")),
			refused: "address 192.0.2.5 is IPv4, but Service ns/b is SingleStack with ipFamilies [IPv6]"},
		{name: "IPv4 SingleStack asks for one of each", svc: svc("ns", "a", v4, annotated(AnnotationLoadBalancerIPs, "192.0.2.5,2001:db8::5")),
			refused: "address 2001:db8::5 is IPv6, but Service ns/a is SingleStack with ipFamilies [IPv4]"},
		{name: "IPv4 SingleStack asks for IPv4", svc: svc("ns", "a", v4, lbIP("192.0.2.5")), addrs: "192.0.2.5"},
		{name: "IPv6 SingleStack asks for IPv6", svc: svc("ns", "a", v6, annotated(AnnotationLoadBalancerIPs, "2001:db8::5")), addrs: "2001:db8::5"},
		{name: "RequireDualStack asks for one of each", svc: svc("ns", "a",
			dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol),
			annotated(AnnotationLoadBalancerIPs, "192.0.2.5,2001:db8::5")), addrs: "192.0.2.5,2001:db8::5"},
		{name: "PreferDualStack, IPv4 first, asks for IPv6 only", svc: svc("ns", "a",
			dualStack(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol),
			lbIP("2001:db8::5")), addrs: "2001:db8::5"},
		{name: "PreferDualStack on a single-stack cluster lists one family, asks for both", svc: svc("ns", "a",
			dualStack(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol),
			annotated(AnnotationLoadBalancerIPs, "192.0.2.5,2001:db8::5")), addrs: "192.0.2.5,2001:db8::5"},
		{name: "granted as dual-stack, now IPv4 SingleStack: keeps its IPv4, the IPv6 is dropped", svc: svc("ns", "a", v4,
			annotated(AnnotationLoadBalancerIPs, "192.0.2.5,2001:db8::5"), labelled(LabelImplementation, ImplementationKubeVIP)), addrs: "192.0.2.5"},
		{name: "no ipFamilies known: not judged", svc: svc("ns", "a", lbIP("2001:db8::5")), addrs: "2001:db8::5"},
		{name: "an IPv6 SingleStack Service asking for 0.0.0.0 (DHCP) is not judged here", svc: svc("ns", "a", v6, lbIP("0.0.0.0")), addrs: "0.0.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(cfg, allocator.NewUsage(), tc.svc, Options{})
			if tc.refused == "" {
				if d.Err != nil || d.Action != Write || d.Service.Annotations[AnnotationLoadBalancerIPs] != tc.addrs {
					t.Fatalf("decision %v (err %v, write %v), want %s written", d.Action, d.Err, d.Service, tc.addrs)
				}
				return
			}
			var ae *allocator.Error
			if !errors.As(d.Err, &ae) || ae.Reason != allocator.ReasonInvalidRequest {
				t.Fatalf("err = %v, want an InvalidRequest", d.Err)
			}
			if d.Action == Write || d.Service != nil {
				t.Fatalf("decision %v writes %v, want nothing written", d.Action, d.Service)
			}
			if len(d.Events) != 1 || d.Events[0].Type != EventWarning || d.Events[0].Reason != ReasonAllocationFailed ||
				!strings.Contains(d.Events[0].Message, tc.refused) || !strings.HasPrefix(d.Events[0].Message, "InvalidRequest: ") {
				t.Fatalf("events = %+v, want one Warning %s starting InvalidRequest and containing %q", d.Events, ReasonAllocationFailed, tc.refused)
			}
			// What it asked for stays in use (contested): handed to no one
			// else while the Service asks for it.
			if d.Action != Hold || !d.Holding.Contested || len(d.Holding.Also) == 0 {
				t.Errorf("decision %v holding %+v: what it asks for must stay in use, contested", d.Action, d.Holding)
			}
		})
	}
}
