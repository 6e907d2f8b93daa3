package decide

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// Every refusal names what was refused, who holds it and the way out, and
// still starts with the allocator's reason (the documented contract).
func TestRefusalNamesHolderAndWayOut(t *testing.T) {
	held := func(u *allocator.Usage, s *corev1.Service, as ...string) {
		h := Holding(s, addrs(as...))
		u.Assign(h)
	}
	tests := []struct {
		name   string
		data   map[string]string
		usage  func(u *allocator.Usage)
		svc    *corev1.Service
		prefix string
		want   []string
		not    []string
	}{
		{
			name:   "conflict on a port names the holder and three ways out",
			data:   map[string]string{"range-global": "10.0.0.1-10.0.0.3"},
			usage:  func(u *allocator.Usage) { held(u, svc("default", "b"), "10.0.0.2") },
			svc:    svc("default", "a", lbIP("10.0.0.2")),
			prefix: "Conflict: address 10.0.0.2 is held by default/b: both use port 80/TCP (from spec.loadBalancerIP)",
			want:   []string{"ask for another address (or none) in spec.loadBalancerIP", "free 10.0.0.2 from default/b", "ports that do not collide"},
		},
		{
			name: "conflict with a holder that shares with no one: no advice on ports",
			data: map[string]string{"range-global": "10.0.0.1-10.0.0.3"},
			usage: func(u *allocator.Usage) {
				h := Holding(svc("default", "b"), addrs("10.0.0.2"))
				h.Exclusive = true
				u.Assign(h)
			},
			svc:    svc("default", "a", annotated(AnnotationLoadBalancerIPs, "10.0.0.2")),
			prefix: "Conflict: address 10.0.0.2 is held by default/b",
			want:   []string{"in annotation kube-vip.io/loadbalancerIPs", "free 10.0.0.2 from default/b"},
			not:    []string{"ports that do not collide"},
		},
		{
			name: "exhausted pool overlapped by another pool names the other pool's holders",
			data: map[string]string{"range-a": "10.0.0.1-10.0.0.3", "range-b": "10.0.0.2-10.0.0.3"},
			usage: func(u *allocator.Usage) {
				held(u, svc("a", "x"), "10.0.0.1")
				held(u, svc("b", "y"), "10.0.0.2")
				held(u, svc("b", "z"), "10.0.0.3")
			},
			svc:    svc("a", "new"),
			prefix: `PoolExhausted: no free IPv4 address in pool "a"`,
			want:   []string{"range-a gives 3 IPv4 addresses, all in use", `b/y (10.0.0.2, pool "b")`, `b/z (10.0.0.3, pool "b")`, "widen range-a"},
			not:    []string{"a/x"},
		},
		{
			name: "exhausted pool names at most five holders and counts the rest",
			data: map[string]string{"range-a": "10.0.0.1-10.0.0.6", "range-global": "10.0.0.1-10.0.0.6"},
			usage: func(u *allocator.Usage) {
				for i, n := range []string{"p", "q", "r", "s", "t", "u"} {
					held(u, svc("other", n), "10.0.0."+string(rune('1'+i)))
				}
			},
			svc:    svc("a", "new"),
			prefix: "PoolExhausted",
			want:   []string{"range-a gives 6 IPv4 addresses", `other/p (10.0.0.1, pool "global")`, "other/t", "and 1 more"},
			not:    []string{"other/u"},
		},
		{
			name:   "exhausted pool with no overlap says only its size",
			data:   map[string]string{"range-global": "10.0.0.1-10.0.0.1"},
			usage:  func(u *allocator.Usage) { held(u, svc("default", "b"), "10.0.0.1") },
			svc:    svc("default", "a"),
			prefix: "PoolExhausted",
			want:   []string{"range-global gives 1 IPv4 addresses, all in use; widen range-global"},
			not:    []string{"other pools"},
		},
		{
			name:   "no pool says which keys would give one",
			data:   map[string]string{"range-x": "10.0.0.1-10.0.0.3"},
			svc:    svc("default", "a"),
			prefix: "NoPool",
			want:   []string{"add cidr-default or range-default (or cidr-global / range-global)"},
		},
		{
			name:   "a family the pool lacks names the pool's keys",
			data:   map[string]string{"cidr-global": "10.0.0.0/30"},
			svc:    svc("default", "a", dualStack(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)),
			prefix: `FamilyUnavailable: pool "global" has no IPv6 addresses`,
			want:   []string{"add IPv6 addresses to cidr-global"},
		},
		{
			name:   "a malformed request names the field and says fix or remove it",
			data:   map[string]string{"range-global": "10.0.0.1-10.0.0.3"},
			svc:    svc("default", "a", annotated(AnnotationLoadBalancerIPs, "bogus")),
			prefix: `InvalidRequest: annotation kube-vip.io/loadbalancerIPs="bogus"`,
			want:   []string{"fix or remove it"},
		},
		{
			name:   "the other family's address for a single-stack Service: fix the request where it was made",
			data:   map[string]string{"range-global": "10.0.0.1-10.0.0.3,2001:db8::1-2001:db8::3"},
			svc:    svc("default", "a", dualStack(corev1.IPFamilyPolicySingleStack, corev1.IPv4Protocol), lbIP("2001:db8::2")),
			prefix: "InvalidRequest",
			want:   []string{"2001:db8::2", "(from spec.loadBalancerIP); fix spec.loadBalancerIP"},
		},
		{
			name:   "two addresses of one family: fix the request where it was made",
			data:   map[string]string{"range-global": "10.0.0.1-10.0.0.3"},
			svc:    svc("default", "a", annotated(AnnotationLoadBalancerIPs, "10.0.0.1,10.0.0.2")),
			prefix: "InvalidRequest: more than one IPv4 address requested",
			want:   []string{"fix annotation kube-vip.io/loadbalancerIPs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustConfig(t, tt.data)
			u := allocator.NewUsage()
			if tt.usage != nil {
				tt.usage(u)
			}
			d := Decide(cfg, u, tt.svc, Options{})
			if d.Err == nil || len(d.Events) == 0 {
				t.Fatalf("decision %v with no refusal", d.Action)
			}
			ev := d.Events[0]
			if ev.Type != EventWarning || ev.Reason != ReasonAllocationFailed {
				t.Fatalf("event %s %s, want Warning %s", ev.Type, ev.Reason, ReasonAllocationFailed)
			}
			if !strings.HasPrefix(ev.Message, tt.prefix) {
				t.Errorf("message %q does not start with %q", ev.Message, tt.prefix)
			}
			for _, w := range tt.want {
				if !strings.Contains(ev.Message, w) {
					t.Errorf("message %q does not say %q", ev.Message, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(ev.Message, n) {
					t.Errorf("message %q says %q", ev.Message, n)
				}
			}
		})
	}
}
