package decide

import (
	"strings"
	"testing"
)

// TestARequestDoesNotBlockAnotherForGood: two Services ask for one
// address with colliding ports, each seen asking (observed, or refused
// once) before either is decided. The one decided first is granted it,
// sharing it with its holder (the engine decides the oldest first); the
// other is told Conflict, naming it. A Service that carries the address
// (our annotation, a status) still blocks a fresh request, and the
// AddressAssigned names only the Services that hold the address, not one
// that only asks for it.
func TestARequestDoesNotBlockAnotherForGood(t *testing.T) {
	const addr = "192.0.2.1"
	for _, tc := range []struct {
		name string
		// otherOf gives the other Service, seen beside first; refused:
		// it was decided (and refused) once before first is decided,
		// else only observed.
		otherOf func() []svcOpt
		refused bool
		// granted: the first is granted addr; else it is told Conflict
		// naming ns/other.
		granted bool
	}{
		{name: "the other asks in spec.loadBalancerIP, observed", otherOf: func() []svcOpt { return []svcOpt{lbIP(addr)} }, granted: true},
		{name: "the other asks in spec.loadBalancerIP, refused once", otherOf: func() []svcOpt { return []svcOpt{lbIP(addr)} }, refused: true, granted: true},
		{name: "the other asks in another tool's annotation", otherOf: func() []svcOpt { return []svcOpt{annotated("metallb.io/loadBalancerIPs", addr)} }, granted: true},
		{name: "the other carries it in our annotation", otherOf: func() []svcOpt { return []svcOpt{annotated(AnnotationLoadBalancerIPs, addr)} }},
		{name: "the other is served on it (status)", otherOf: func() []svcOpt { return []svcOpt{lbIP(addr), ingress(addr)} }},
		{name: "the other is not ours (another class)", otherOf: func() []svcOpt { return []svcOpt{lbIP(addr), class("example.com/other")} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.1-192.0.2.2"})
			l := NewLedger(nil)
			holder := l.Decide(cfg, svc("ns", "holder", portsOf(80), rv("1")), Options{})
			l.Written(holder, "2")
			first := svc("ns", "first", portsOf(443), lbIP(addr), rv("3"))
			other := svc("ns", "other", append([]svcOpt{portsOf(443), rv("4")}, tc.otherOf()...)...)
			l.Observe(first, Options{})
			l.Observe(other, Options{})
			if tc.refused {
				// Refused while a third Service held the address with
				// its port; that one is gone before first is decided.
				blocker := l.Decide(cfg, svc("ns", "blocker", portsOf(443), annotated(AnnotationLoadBalancerIPs, addr)), Options{})
				l.Written(blocker, "1")
				if d := l.Decide(cfg, other, Options{}); d.Err == nil || !d.Holding.Contested {
					t.Fatalf("other, while blocker held it: %v %v, want a Conflict", d.Action, d.Err)
				}
				l.Forget("ns/blocker")
			}
			d := l.Decide(cfg, first, Options{})
			if !tc.granted {
				if d.Err == nil || !strings.Contains(d.Err.Error(), "held by ns/other") {
					t.Fatalf("first: %v %v, want a Conflict naming ns/other", d.Action, d.Err)
				}
				return
			}
			if d.Action != Write || d.Err != nil || d.Service.Annotations[AnnotationLoadBalancerIPs] != addr {
				t.Fatalf("first: %v %v (events %v), want a Write of %s", d.Action, d.Err, d.Events, addr)
			}
			if msg := d.Events[0].Message; !strings.HasSuffix(msg, "(sharing "+addr+" with ns/holder)") {
				t.Errorf("first's AddressAssigned %q, want it to name only ns/holder", msg)
			}
			l.Written(d, "5")
			if d := l.Decide(cfg, other, Options{}); d.Err == nil || !strings.Contains(d.Err.Error(), "held by ns/first") {
				t.Fatalf("other after first was granted: %v %v, want a Conflict naming ns/first", d.Action, d.Err)
			}
		})
	}
}
