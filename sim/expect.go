package sim

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// expect checks an expect step against the store.
func (s *simulator) expect(e *Expect) error {
	svc, ok := s.cluster.services[e.Service]
	fail := func(format string, args ...any) error {
		return &ExpectError{Step: s.step, Service: e.Service, Message: fmt.Sprintf(format, args...)}
	}
	if !ok {
		return fail("no such Service")
	}
	got := svc.Annotations[decide.AnnotationLoadBalancerIPs]
	if len(e.Addresses) > 0 {
		want := make([]netip.Addr, len(e.Addresses))
		for i, a := range e.Addresses {
			want[i] = netip.MustParseAddr(a)
		}
		if got != decide.JoinAddrs(want) {
			return fail("addresses %q, want %q (events %v)", got, decide.JoinAddrs(want), reasons(s.events[e.Service]))
		}
	}
	if e.NoAddress != nil && *e.NoAddress && got != "" {
		return fail("has address %q, want none", got)
	}
	if e.NoAddress != nil && !*e.NoAddress && got == "" {
		return fail("has no address, want one (events %v)", reasons(s.events[e.Service]))
	}
	if e.Event != "" && !hasReason(s.events[e.Service], e.Event) {
		return fail("no %s event (events %v)", e.Event, reasons(s.events[e.Service]))
	}
	row := Row{Actor: "expect", What: "ok", Service: e.Service, Addresses: got, Reason: e.Event}
	if got == "" && e.NoAddress != nil && *e.NoAddress {
		row.Detail = "no address"
	}
	s.add(row)
	return nil
}

// hasReason reports whether evs has an Event of the reason.
func hasReason(evs []decide.Event, reason string) bool {
	return slices.ContainsFunc(evs, func(e decide.Event) bool { return e.Reason == reason })
}

// reasons lists the reasons of evs, for messages.
func reasons(evs []decide.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Reason
	}
	return out
}
