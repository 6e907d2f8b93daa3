package sim

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// expect checks an expect step against the store (or, for the ConfigMap,
// against the rows shown so far).
func (s *simulator) expect(e *Expect) error {
	if e.ConfigMap {
		return s.expectConfigMap(e)
	}
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
	if e.Event != "" && !hasEvent(s.events[e.Service], e.Event, e.Kind) {
		want := e.Event
		if e.Kind != "" {
			want += " (" + e.Kind + ")"
		}
		return fail("no %s event (events %v)", want, reasons(s.events[e.Service]))
	}
	row := Row{Actor: "expect", What: "ok", Service: e.Service, Addresses: got, Reason: e.Event}
	switch {
	case e.Kind != "":
		row.Detail = e.Kind
	case got == "" && e.NoAddress != nil && *e.NoAddress:
		row.Detail = "no address"
	}
	s.add(row)
	return nil
}

// expectConfigMap checks that an InvalidConfig row was shown so far (for
// e.Key, when given), as the controller records it on the ConfigMap.
func (s *simulator) expectConfigMap(e *Expect) error {
	var keys []string
	for _, r := range s.res.Rows {
		if r.Actor == "expect" || r.Reason != e.Event {
			continue
		}
		if e.Key == "" || r.Detail == e.Key {
			s.add(Row{Actor: "expect", What: "ok", Detail: "ConfigMap " + e.Key, Reason: e.Event})
			return nil
		}
		if !slices.Contains(keys, r.Detail) {
			keys = append(keys, r.Detail)
		}
	}
	what := e.Event + " event"
	if e.Key != "" {
		what += " for key " + e.Key
	}
	shown := "none shown"
	if len(keys) > 0 {
		shown = "shown for " + strings.Join(keys, ", ")
	}
	return &ExpectError{Step: s.step, Service: "the ConfigMap", Message: fmt.Sprintf("no %s (%s)", what, shown)}
}

// hasReason reports whether evs has an Event of the reason.
func hasReason(evs []decide.Event, reason string) bool {
	return slices.ContainsFunc(evs, func(e decide.Event) bool { return e.Reason == reason })
}

// hasEvent reports whether evs has an Event of the reason whose message
// starts with kind (any, when kind is "").
func hasEvent(evs []decide.Event, reason, kind string) bool {
	return slices.ContainsFunc(evs, func(e decide.Event) bool {
		return e.Reason == reason && (kind == "" || strings.HasPrefix(e.Message, kind+":"))
	})
}

// reasons lists the reasons of evs, for messages; an AllocationFailed
// names its kind.
func reasons(evs []decide.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Reason
		if kind, _, ok := strings.Cut(e.Message, ":"); ok && e.Reason == decide.ReasonAllocationFailed && !strings.Contains(kind, " ") {
			out[i] += " (" + kind + ")"
		}
	}
	return out
}
