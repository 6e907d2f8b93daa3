package controller_test

import (
	"testing"
	"time"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// Two Services ask for one address with ports that collide with each
// other but not with the Service holding it, and appear while no
// controller runs, so each is seen asking beside the other. The older one
// is granted the address (sharing it with the holder, whatever allow-share
// says); the younger is told Conflict, naming the older as holder; a
// config change that allows sharing changes neither.
func TestOldestOfTwoRequestsForOneAddressIsGranted(t *testing.T) {
	const addr = "10.64.0.1"
	for _, tc := range []struct {
		name string
		ask  svcOpt
		// carries: the request is in our annotation, which the younger
		// keeps carrying while it is in conflict.
		carries bool
	}{
		{name: "spec.loadBalancerIP", ask: withIP(addr)},
		{name: "annotation", ask: withAnnotation(decide.AnnotationLoadBalancerIPs, addr), carries: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]string{"range-global": "10.64.0.1-10.64.0.2"}
			h := newHarness(t, cfg)
			h.start(nil)
			h.create("holder", ports("80/TCP"))
			if got := h.addressOf(h.ns, "holder"); got != addr {
				t.Fatalf("holder got %q, want %s", got, addr)
			}
			h.stopController()
			// b is the older (creation timestamps have a resolution of
			// a second), though named after a.
			h.create("b", ports("443/TCP"), tc.ask)
			time.Sleep(1100 * time.Millisecond)
			h.create("a", ports("443/TCP"), tc.ask)
			h.start(nil)

			check := func() {
				t.Helper()
				if got := h.addressOf(h.ns, "b"); got != addr {
					t.Fatalf("b (the older) got %q, want %s", got, addr)
				}
				h.waitEvent(h.ns, "Service", "a", decide.ReasonAllocationFailed, "is held by "+h.ns+"/b")
				if got := h.get(h.ns, "a").Annotations[decide.AnnotationLoadBalancerIPs]; !tc.carries && got != "" {
					t.Fatalf("a (the younger) got %q, want no address", got)
				}
				if got := h.get(h.ns, "holder").Annotations[decide.AnnotationLoadBalancerIPs]; got != addr {
					t.Fatalf("holder now has %q, want %s", got, addr)
				}
			}
			check()
			cfg["allow-share-global"] = "true"
			h.setConfig(cfg)
			time.Sleep(500 * time.Millisecond)
			check()
		})
	}
}

// Two Services ask for the address a third holds, with its port: both
// wait in Conflict. When the holder is deleted, the older of the two is
// granted the address; the younger is told Conflict, naming it.
func TestOldestOfTwoWaitingRequestsGetsTheFreedAddress(t *testing.T) {
	const addr = "10.65.0.1"
	h := newHarness(t, map[string]string{"range-global": "10.65.0.1-10.65.0.2"})
	h.start(nil)
	h.create("holder", ports("443/TCP"), withIP(addr))
	if got := h.addressOf(h.ns, "holder"); got != addr {
		t.Fatalf("holder got %q, want %s", got, addr)
	}
	h.create("b", ports("443/TCP"), withIP(addr))
	h.waitEvent(h.ns, "Service", "b", decide.ReasonAllocationFailed, "is held by "+h.ns+"/holder")
	time.Sleep(1100 * time.Millisecond) // creation timestamps: a second
	h.create("a", ports("443/TCP"), withIP(addr))
	h.waitEvent(h.ns, "Service", "a", decide.ReasonAllocationFailed, "is held by ")
	h.delete(h.ns, "holder")
	if got := h.addressOf(h.ns, "b"); got != addr {
		t.Fatalf("b (the older) got %q, want %s", got, addr)
	}
	h.waitEvent(h.ns, "Service", "a", decide.ReasonAllocationFailed, "is held by "+h.ns+"/b")
	if got := h.get(h.ns, "a").Annotations[decide.AnnotationLoadBalancerIPs]; got != "" {
		t.Fatalf("a (the younger) got %q, want no address", got)
	}
}
