package decide

import (
	"slices"
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// An address named in another tool's request annotation counts as in use
// ("every address anyone is served on"): the tool may still serve the
// Service there, whatever this provider gives it.
func TestOtherToolsRequestsCountAsInUse(t *testing.T) {
	for _, k := range RequestAnnotations() {
		t.Run(k, func(t *testing.T) {
			s := svc("ns", "a", annotated(k, "192.0.2.4, 2001:db8::4,bogus"))
			if got := JoinAddrs(InUse(s)); got != "192.0.2.4,2001:db8::4" {
				t.Errorf("InUse = %q, want 192.0.2.4,2001:db8::4", got)
			}
			// Of another class: never handed to a Service of ours.
			cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.4-192.0.2.5"})
			u := allocator.NewUsage()
			other := svc("ns", "other", annotated(k, "192.0.2.4"), class("example.com/other"))
			Decide(cfg, u, other, Options{}).Apply(u, Key(other))
			d := Decide(cfg, u, svc("ns", "b"), Options{})
			if d.Action != Write || JoinAddrs(d.Holding.Addrs) != "192.0.2.5" {
				t.Errorf("a new Service got %v %s, want 192.0.2.5 (192.0.2.4 is another tool's)", d.Action, JoinAddrs(d.Holding.Addrs))
			}
		})
	}
	// Ours in force, MetalLB's left over: ours is held, MetalLB's stays
	// reserved while the annotation is there.
	cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.1-192.0.2.9"})
	s := svc("ns", "a", annotated(AnnotationMetalLBIPs, "192.0.2.4"), annotated(AnnotationLoadBalancerIPs, "192.0.2.5"))
	d := Decide(cfg, allocator.NewUsage(), s, Options{})
	if JoinAddrs(d.Holding.Addrs) != "192.0.2.5" || !slices.Contains(d.Holding.Also, addrs("192.0.2.4")[0]) {
		t.Errorf("holding %s also %s, want 192.0.2.5 also 192.0.2.4", JoinAddrs(d.Holding.Addrs), JoinAddrs(d.Holding.Also))
	}
}

// Cilium's older request annotation is a request, as the newer one.
func TestCiliumLegacyRequestIsARequest(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.1-192.0.2.9"})
	d := Decide(cfg, allocator.NewUsage(), svc("ns", "a", annotated(AnnotationCiliumLegacyIPs, "192.0.2.7")), Options{})
	if d.Action != Write || d.Service.Annotations[AnnotationLoadBalancerIPs] != "192.0.2.7" || d.Service.Spec.LoadBalancerIP != "192.0.2.7" {
		t.Fatalf("got %v %v", d.Action, d.Service)
	}
	if d.Events[0].Message != "assigned 192.0.2.7, as requested in annotation io.cilium/lb-ipam-ips" {
		t.Errorf("event %q", d.Events[0].Message)
	}
}
