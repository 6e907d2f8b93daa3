package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// kindExpect is the expect step: a check, once the controller has settled.
func kindExpect() stepKind {
	return stepKind{
		name: "expect", example: "expect: {service: NS/NAME, addresses: [192.168.0.200]}", settles: true,
		value: func(st *Step) any { return orNil(st.Expect) },
		decode: func(st *Step, raw json.RawMessage) (err error) {
			st.Expect, err = decodeExpect(raw)
			return err
		},
		validate: func(st *Step) error { return st.Expect.validate() },
		play:     func(s *simulator, st *Step) error { return s.expectStep(st.Expect) },
	}
}

// Expect is checked once the controller has settled. It checks either a
// Service or, with ConfigMap set, the ConfigMap.
type Expect struct {
	Service string `json:"service,omitempty"`
	// ConfigMap, when set, checks the Events recorded on the ConfigMap
	// instead of a Service's: Event must be InvalidConfig (the default),
	// UnknownConfigKey or ConfigNotice.
	ConfigMap bool `json:"configmap,omitempty"`
	// Key, with ConfigMap, is the ConfigMap key the Event must be about.
	Key string `json:"key,omitempty"`
	// Addresses the Service must carry, in order.
	Addresses []string `json:"addresses,omitempty"`
	// Event is a reason that must have been recorded on the Service (or,
	// with ConfigMap, on the ConfigMap).
	Event string `json:"event,omitempty"`
	// Kind is the kind of AllocationFailed the Event must be: its message
	// starts with it (PoolExhausted, NoPool, Conflict, FamilyUnavailable or
	// InvalidRequest).
	Kind string `json:"kind,omitempty"`
	// NoAddress, when set: true, the Service must carry no address; false,
	// it must carry at least one.
	NoAddress *bool `json:"noAddress,omitempty"`
}

// failureKinds are the kinds of AllocationFailed, as its message begins.
func failureKinds() []string {
	return []string{string(allocator.ReasonExhausted), string(allocator.ReasonNoPool), string(allocator.ReasonConflict),
		string(allocator.ReasonFamilyUnavailable), string(allocator.ReasonInvalidRequest)}
}

func (e *Expect) validate() error {
	if e.ConfigMap {
		return e.validateConfigMap()
	}
	if _, _, err := splitRef(e.Service); err != nil {
		return err
	}
	if e.Key != "" {
		return fmt.Errorf("key %q: only the ConfigMap's Events are about a key (write configmap: true, event: InvalidConfig, key: KEY)", e.Key)
	}
	for _, a := range e.Addresses {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("addresses: %q is not an IP address", a)
		}
	}
	if len(e.Addresses) == 0 && e.Event == "" && e.NoAddress == nil {
		return errors.New("give addresses, event or noAddress")
	}
	if len(e.Addresses) > 0 && e.NoAddress != nil && *e.NoAddress {
		return errors.New("addresses and noAddress: true contradict")
	}
	switch e.Event {
	case "", decide.ReasonAddressAssigned, decide.ReasonAllocationFailed, decide.ReasonAddressOutsidePool, decide.ReasonAddressReleased:
	case decide.ReasonInvalidConfig, decide.ReasonUnknownConfigKey, decide.ReasonConfigNotice:
		return fmt.Errorf("event %s: that is recorded on the ConfigMap, not on a Service: write expect: {configmap: true, event: %s, key: KEY}", e.Event, e.Event)
	default:
		return fmt.Errorf("event %q: not a reason the controller records on a Service (want %s, %s, %s or %s)", e.Event,
			decide.ReasonAddressAssigned, decide.ReasonAllocationFailed, decide.ReasonAddressOutsidePool, decide.ReasonAddressReleased)
	}
	if e.Kind == "" {
		return nil
	}
	if e.Event != decide.ReasonAllocationFailed {
		return fmt.Errorf("kind %s: a kind of %s; event is %s", e.Kind, decide.ReasonAllocationFailed, e.Event)
	}
	if !slices.Contains(failureKinds(), e.Kind) {
		return fmt.Errorf("kind %q: not a kind of %s (want one of %s)%s", e.Kind, decide.ReasonAllocationFailed,
			strings.Join(failureKinds(), ", "), didYouMean(e.Kind, failureKinds()))
	}
	return nil
}

// validateConfigMap checks an expect of the ConfigMap's Events.
func (e *Expect) validateConfigMap() error {
	switch {
	case e.Service != "":
		return fmt.Errorf("service %q and configmap: true: give one (an expect checks a Service or the ConfigMap)", e.Service)
	case len(e.Addresses) > 0 || e.NoAddress != nil:
		return errors.New("configmap: true: the ConfigMap has no addresses (give event: InvalidConfig and key)")
	case e.Kind != "":
		return fmt.Errorf("kind %s: a kind of %s, which is recorded on a Service, not the ConfigMap", e.Kind, decide.ReasonAllocationFailed)
	case !slices.Contains(configMapReasons(), e.Event):
		return fmt.Errorf("event %q: the controller records only %s on the ConfigMap%s", e.Event,
			strings.Join(configMapReasons(), ", "), didYouMean(e.Event, configMapReasons()))
	}
	return nil
}

// configMapReasons are the reasons of the Events recorded on the ConfigMap.
func configMapReasons() []string {
	return []string{decide.ReasonInvalidConfig, decide.ReasonUnknownConfigKey, decide.ReasonConfigNotice}
}

// expectFields are the fields of an expect.
var expectFields = []string{"service", "configmap", "key", "addresses", "address", "event", "reason", "kind", "noAddress"}

// decodeExpect reads an expect; addresses: [] (or nothing) means no
// address, like noAddress: true; address: A is addresses: [A]; reason: is
// event:; kind: alone means event: AllocationFailed, and configmap: true
// alone event: InvalidConfig.
func decodeExpect(raw json.RawMessage) (*Expect, error) {
	m, err := fields(raw, "{service: NS/NAME, addresses: [...] | event: REASON | noAddress: true} or {configmap: true, event: InvalidConfig, key: KEY}", expectFields)
	if err != nil {
		return nil, err
	}
	e := &Expect{}
	none := false // addresses: [] was written
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "service":
			e.Service, err = asService(v)
		case "configmap":
			e.ConfigMap, err = asBool(v)
		case "key":
			e.Key, err = asString(v)
		case "addresses":
			e.Addresses, err = asStrings(v)
			none = err == nil && len(e.Addresses) == 0
		case "address":
			var a string
			if a, err = asString(v); err == nil && a != "" {
				e.Addresses = append(e.Addresses, a)
			}
		case "event", "reason":
			var r string
			if r, err = asString(v); err == nil && e.Event != "" && e.Event != r {
				err = fmt.Errorf("%q, but event/reason is already %q", r, e.Event)
			}
			e.Event = r
		case "kind":
			e.Kind, err = asString(v)
			e.Kind = canonical(e.Kind, failureKinds()...)
		case "noAddress":
			var b bool
			b, err = asBool(v)
			e.NoAddress = &b
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if _, ok := m["service"]; !ok && !e.ConfigMap {
		return nil, errors.New("service: missing (write service: NS/NAME, or configmap: true for the ConfigMap)")
	}
	_, both := m["address"]
	if _, ok := m["addresses"]; ok && both {
		return nil, errors.New("give address or addresses, not both")
	}
	if none {
		e.Addresses = nil
		if e.NoAddress != nil && !*e.NoAddress {
			return nil, errors.New("addresses: [] and noAddress: false contradict")
		}
		t := true
		e.NoAddress = &t
	}
	switch {
	case e.Event != "":
	case e.ConfigMap:
		e.Event = decide.ReasonInvalidConfig
	case e.Kind != "":
		e.Event = decide.ReasonAllocationFailed
	}
	return e, nil
}

// expectStep plays expect, once the controller has settled.
func (s *simulator) expectStep(e *Expect) error {
	if err := s.settle(); err != nil {
		return err
	}
	if !s.opts.CheckOnlyAtEnd {
		if err := s.checkQuiet(); err != nil {
			return err
		}
	}
	return s.expect(e)
}

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
			return fail("addresses %q, want %q (events %v)", got, decide.JoinAddrs(want), reasons(s.outcomes.events[e.Service]))
		}
	}
	if e.NoAddress != nil && *e.NoAddress && got != "" {
		return fail("has address %q, want none", got)
	}
	if e.NoAddress != nil && !*e.NoAddress && got == "" {
		return fail("has no address, want one (events %v)", reasons(s.outcomes.events[e.Service]))
	}
	if e.Event != "" && !hasEvent(s.outcomes.events[e.Service], e.Event, e.Kind) {
		want := e.Event
		if e.Kind != "" {
			want += " (" + e.Kind + ")"
		}
		return fail("no %s event (events %v)", want, reasons(s.outcomes.events[e.Service]))
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
