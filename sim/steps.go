package sim

import (
	"encoding/json"
	"fmt"
	"strings"
)

// stepKind is everything the simulator knows about one kind of step: its
// name in YAML, how it is read, checked and played. Each kind is spelled
// out here once; the parser, the validation, the YAML writer and the run
// all go through stepKinds.
type stepKind struct {
	name string
	// example shows how the kind is written, for errors.
	example string
	// bare: the kind may stand alone as a list item ("- settle").
	bare bool
	// value returns the step's value of this kind, or nil when the step
	// is of another kind.
	value func(st *Step) any
	// decode reads the kind's value (raw may be null) into st.
	decode func(st *Step, raw json.RawMessage) error
	// validate checks the value decode or a program put there.
	validate func(st *Step) error
	// play applies the step to a running simulation.
	play func(s *simulator, st *Step) error
	// settles: play lets the controller finish its work, so no seeded
	// interleaving of work follows the step.
	settles bool
	// works: play is itself one work item of the controller's, and no
	// seeded interleaving follows it either (the scenario orders the
	// syncs).
	works bool
}

// kindCount is the number of step kinds.
const kindCount = 16

// stepKinds returns the step kinds, in the order the README lists them.
// It is an array returned by value, built afresh on each call, so that
// nothing can change it and no initialization order ties it to the code
// its entries call.
func stepKinds() [kindCount]stepKind {
	return [kindCount]stepKind{
		{
			name: "create", example: "create: {service: NS/NAME}",
			value: func(st *Step) any { return orNil(st.Create) },
			decode: func(st *Step, raw json.RawMessage) (err error) {
				st.Create, err = decodeServiceSpec(raw, true)
				return err
			},
			validate: func(st *Step) error { return st.Create.validate() },
			play:     func(s *simulator, st *Step) error { return s.create(st.Create) },
		},
		{
			name: "update", example: "update: {service: NS/NAME}",
			value: func(st *Step) any { return orNil(st.Update) },
			decode: func(st *Step, raw json.RawMessage) (err error) {
				st.Update, err = decodeServiceSpec(raw, false)
				return err
			},
			validate: func(st *Step) error { return st.Update.validate() },
			play:     func(s *simulator, st *Step) error { return s.update(st.Update) },
		},
		{
			name: "delete", example: "delete: {service: NS/NAME}",
			value: func(st *Step) any { return orNil(st.Delete) },
			decode: func(st *Step, raw json.RawMessage) (err error) {
				st.Delete, err = decodeDelete(raw)
				return err
			},
			validate: func(st *Step) error {
				if st.Delete.ConfigMap {
					if st.Delete.Service != "" {
						return fmt.Errorf("service %q and configmap: true: give one", st.Delete.Service)
					}
					return nil
				}
				_, _, err := splitRef(st.Delete.Service)
				return err
			},
			play: func(s *simulator, st *Step) error {
				if st.Delete.ConfigMap {
					s.deleteConfigMap()
					return nil
				}
				return s.deleteService(st.Delete.Service)
			},
		},
		{
			name: "config", example: "config: {cidr-global: 192.168.0.200/29}",
			value: func(st *Step) any {
				if st.Config == nil {
					return nil
				}
				return st.Config
			},
			decode: func(st *Step, raw json.RawMessage) error {
				data, err := asMap(raw)
				if err != nil {
					return err
				}
				if data == nil {
					data = map[string]string{} // config: with nothing empties the ConfigMap
				}
				st.Config = data
				return nil
			},
			validate: func(*Step) error { return nil },
			play:     func(s *simulator, st *Step) error { s.changeConfig(st.Config); return nil },
		},
		{
			name: "restart", example: "restart: {}", bare: true,
			value:    func(st *Step) any { return orNil(st.Restart) },
			decode:   func(st *Step, raw json.RawMessage) error { return decodeEmpty(&st.Restart, raw) },
			validate: func(*Step) error { return nil },
			play:     func(s *simulator, _ *Step) error { s.restart(); return nil },
		},
		{
			name: "stop", example: "stop: {}", bare: true,
			value:    func(st *Step) any { return orNil(st.Stop) },
			decode:   func(st *Step, raw json.RawMessage) error { return decodeEmpty(&st.Stop, raw) },
			validate: func(*Step) error { return nil },
			play:     func(s *simulator, _ *Step) error { return s.stop() },
		},
		{
			name: "lag", example: "lag: 2",
			value: func(st *Step) any { return orNil(st.Lag) },
			decode: func(st *Step, raw json.RawMessage) error {
				return decodeCount(&st.Lag, raw, false)
			},
			validate: func(st *Step) error { return inRange("lag", *st.Lag, 0, 1000) },
			play:     func(s *simulator, st *Step) error { s.setLag(*st.Lag); return nil },
		},
		{
			name: "lose", example: "lose: 2",
			value: func(st *Step) any { return orNil(st.Lose) },
			decode: func(st *Step, raw json.RawMessage) error {
				return decodeCount(&st.Lose, raw, true)
			},
			validate: func(st *Step) error { return inRange("lose", *st.Lose, 1, 1000) },
			play:     func(s *simulator, st *Step) error { s.loseAnswers(*st.Lose); return nil },
		},
		{
			name: "drop", example: "drop: 2",
			value: func(st *Step) any { return orNil(st.Drop) },
			decode: func(st *Step, raw json.RawMessage) error {
				return decodeCount(&st.Drop, raw, true)
			},
			validate: func(st *Step) error { return inRange("drop", *st.Drop, 1, 1000) },
			play:     func(s *simulator, st *Step) error { s.dropWrites(*st.Drop); return nil },
		},
		{
			name: "conflict", example: "conflict: {}", bare: true,
			value: func(st *Step) any { return orNil(st.Conflict) },
			decode: func(st *Step, raw json.RawMessage) (err error) {
				st.Conflict, err = decodeConflict(raw)
				return err
			},
			validate: func(st *Step) error { return st.Conflict.validate() },
			play:     func(s *simulator, st *Step) error { s.injectConflicts(st.Conflict); return nil },
		},
		{
			name: "replicas", example: "replicas: 2",
			value: func(st *Step) any { return orNil(st.Replicas) },
			decode: func(st *Step, raw json.RawMessage) error {
				return decodeCount(&st.Replicas, raw, false)
			},
			validate: func(st *Step) error {
				if n := *st.Replicas; n < 1 || n > 2 {
					return fmt.Errorf("replicas %d: must be 1 or 2", n)
				}
				return nil
			},
			play: func(s *simulator, st *Step) error {
				if err := s.running("replicas"); err != nil {
					return err
				}
				s.setReplicas(*st.Replicas)
				return nil
			},
		},
		{
			name: "handover", example: "handover: {}", bare: true,
			value:    func(st *Step) any { return orNil(st.Handover) },
			decode:   func(st *Step, raw json.RawMessage) error { return decodeEmpty(&st.Handover, raw) },
			validate: func(*Step) error { return nil },
			play:     func(s *simulator, _ *Step) error { return s.handover() },
		},
		{
			name: "active", example: "active: 2",
			value: func(st *Step) any { return orNil(st.Active) },
			decode: func(st *Step, raw json.RawMessage) error {
				return decodeCount(&st.Active, raw, false)
			},
			validate: func(st *Step) error {
				if n := *st.Active; n < 1 || n > 2 {
					return fmt.Errorf("active %d: must be 1 or 2", n)
				}
				return nil
			},
			play: func(s *simulator, st *Step) error { return s.setActive(*st.Active) },
		},
		{
			name: "sync", example: "sync: {service: NS/NAME}", works: true,
			value: func(st *Step) any { return orNil(st.Sync) },
			decode: func(st *Step, raw json.RawMessage) error {
				ref, err := decodeRef(raw)
				if err != nil {
					return err
				}
				st.Sync = &Ref{Service: ref}
				return nil
			},
			validate: func(st *Step) error {
				_, _, err := splitRef(st.Sync.Service)
				return err
			},
			play: func(s *simulator, st *Step) error { return s.syncOutOfTurn(st.Sync.Service) },
		},
		{
			name: "settle", example: "settle: {}", bare: true, settles: true,
			value:    func(st *Step) any { return orNil(st.Settle) },
			decode:   func(st *Step, raw json.RawMessage) error { return decodeEmpty(&st.Settle, raw) },
			validate: func(*Step) error { return nil },
			play:     func(s *simulator, _ *Step) error { return s.settleStep() },
		},
		{
			name: "expect", example: "expect: {service: NS/NAME, addresses: [192.168.0.200]}", settles: true,
			value: func(st *Step) any { return orNil(st.Expect) },
			decode: func(st *Step, raw json.RawMessage) (err error) {
				st.Expect, err = decodeExpect(raw)
				return err
			},
			validate: func(st *Step) error { return st.Expect.validate() },
			play:     func(s *simulator, st *Step) error { return s.expectStep(st.Expect) },
		},
	}
}

// kindNames lists the kinds' names, comma-separated, for errors.
func kindNames() string {
	var names []string
	for _, k := range stepKinds() {
		names = append(names, k.name)
	}
	return strings.Join(names, ", ")
}

// kindNamed returns the kind of the given name.
func kindNamed(name string) (stepKind, bool) {
	for _, k := range stepKinds() {
		if k.name == name {
			return k, true
		}
	}
	return stepKind{}, false
}

// kindOf returns the kind of the first value set in st, and how many are
// set (a valid step has exactly one).
func kindOf(st *Step) (stepKind, int) {
	var first stepKind
	n := 0
	for _, k := range stepKinds() {
		if k.value(st) != nil {
			if n == 0 {
				first = k
			}
			n++
		}
	}
	return first, n
}

// orNil returns p, or an untyped nil when p is nil (a nil *T in an any is
// not nil).
func orNil[T any](p *T) any {
	if p == nil {
		return nil
	}
	return p
}

// decodeEmpty reads the value of a kind that takes none: {} or nothing.
func decodeEmpty(field **struct{}, raw json.RawMessage) error {
	if _, err := fields(raw, "{} or nothing", nil); err != nil {
		return err
	}
	*field = &struct{}{}
	return nil
}

// decodeCount reads a number; with nullIsOne, nothing means 1 (lose: or
// drop: with nothing after it, the next write).
func decodeCount(field **int, raw json.RawMessage, nullIsOne bool) error {
	n := 1
	if !nullIsOne || !isNull(raw) {
		var err error
		if n, err = asInt(raw); err != nil {
			return err
		}
	}
	*field = &n
	return nil
}

// inRange checks that a kind's number is within lo-hi.
func inRange(kind string, n, lo, hi int) error {
	if n < lo || n > hi {
		return fmt.Errorf("%s %d: must be %d-%d", kind, n, lo, hi)
	}
	return nil
}
