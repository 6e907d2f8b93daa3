package sim

import (
	"encoding/json"
	"fmt"
	"strings"
)

// stepKind is everything the simulator knows about one kind of step: its
// name in YAML, how it is read, checked and played. Each kind is spelled
// out once (see stepKinds); the parser, the validation, the YAML writer and
// the run all go through stepKinds.
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

// stepKinds returns the step kinds, in the order docs/simulator.md lists
// them. A kind is written whole in one function (its name, example, how it
// is read, checked and played), beside the code it plays: steps_objects.go
// (what users do to the API objects), steps_faults.go (the hazards a
// scenario injects), steps_controllers.go (the controller processes) and
// expect.go. Adding a kind is a field of Step, one such function, and its
// line here and in docs/simulator.md. The list is built afresh on each
// call, so that nothing can change it and no initialization order ties it
// to the code its entries call.
func stepKinds() []stepKind {
	return []stepKind{
		kindCreate(), kindUpdate(), kindDelete(), kindConfig(),
		kindRestart(), kindStop(),
		kindLag(), kindLose(), kindDrop(), kindConflict(),
		kindReplicas(), kindHandover(), kindActive(), kindSync(),
		kindSettle(), kindExpect(),
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

// play applies one step (its kind's play, in stepKinds), then, unless the
// step let the controller settle or was itself a work item, lets the
// leader do a seeded amount of work.
func (s *simulator) play(st Step) error {
	k, n := kindOf(&st)
	if n != 1 {
		return fmt.Errorf("step %d: a step needs exactly one of %s (found %d)", s.step, kindNames(), n)
	}
	if err := k.play(s, &st); err != nil || k.settles || k.works {
		return err
	}
	// A seeded interleaving: the controller gets 0-3 work items in.
	for n := s.rng.IntN(4); n > 0; n-- {
		if _, err := s.work(); err != nil {
			return err
		}
	}
	return nil
}
