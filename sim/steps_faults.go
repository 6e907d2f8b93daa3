package sim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// kindLag is the lag step: the controller's cache lags the API server.
func kindLag() stepKind {
	return stepKind{
		name: "lag", example: "lag: 2",
		value: func(st *Step) any { return orNil(st.Lag) },
		decode: func(st *Step, raw json.RawMessage) error {
			return decodeCount(&st.Lag, raw, false)
		},
		validate: func(st *Step) error { return inRange("lag", *st.Lag, 0, 1000) },
		play:     func(s *simulator, st *Step) error { s.setLag(*st.Lag); return nil },
	}
}

// kindLose is the lose step: the answers to the next writes are lost.
func kindLose() stepKind {
	return stepKind{
		name: "lose", example: "lose: 2",
		value: func(st *Step) any { return orNil(st.Lose) },
		decode: func(st *Step, raw json.RawMessage) error {
			return decodeCount(&st.Lose, raw, true)
		},
		validate: func(st *Step) error { return inRange("lose", *st.Lose, 1, 1000) },
		play:     func(s *simulator, st *Step) error { s.loseAnswers(*st.Lose); return nil },
	}
}

// kindDrop is the drop step: the next writes are lost on their way.
func kindDrop() stepKind {
	return stepKind{
		name: "drop", example: "drop: 2",
		value: func(st *Step) any { return orNil(st.Drop) },
		decode: func(st *Step, raw json.RawMessage) error {
			return decodeCount(&st.Drop, raw, true)
		},
		validate: func(st *Step) error { return inRange("drop", *st.Drop, 1, 1000) },
		play:     func(s *simulator, st *Step) error { s.dropWrites(*st.Drop); return nil },
	}
}

// kindConflict is the conflict step: the next writes fail with a conflict.
func kindConflict() stepKind {
	return stepKind{
		name: "conflict", example: "conflict: {}", bare: true,
		value: func(st *Step) any { return orNil(st.Conflict) },
		decode: func(st *Step, raw json.RawMessage) (err error) {
			st.Conflict, err = decodeConflict(raw)
			return err
		},
		validate: func(st *Step) error { return st.Conflict.validate() },
		play:     func(s *simulator, st *Step) error { s.injectConflicts(st.Conflict); return nil },
	}
}

// faults are the hazards a scenario injects: the informer's lag, and the
// simulated API server's answers to the controller's writes.
type faults struct {
	// lag is how many writes the controller's caches are behind.
	lag int
	// conflicts: the next n writes fail with a conflict; conflictFor,
	// the next n writes of a key.
	conflicts   int
	conflictFor map[string]int
	// lost is how many of the next writes land but lose their answer;
	// dropped, how many are lost on their way and never land.
	lost, dropped int
}

// conflict reports whether a write of key meets an injected conflict, and
// uses it up: one injected for key first, else one for any write.
func (f *faults) conflict(key string) bool {
	switch {
	case f.conflictFor[key] > 0:
		f.conflictFor[key]--
	case f.conflicts > 0:
		f.conflicts--
	default:
		return false
	}
	return true
}

// drop reports whether the next write is lost on its way, and uses it up.
func (f *faults) drop() bool { return take(&f.dropped) }

// lose reports whether the next write that lands loses its answer, and
// uses it up.
func (f *faults) lose() bool { return take(&f.lost) }

// take uses up one of n, if there is one.
func take(n *int) bool {
	if *n == 0 {
		return false
	}
	*n--
	return true
}

// inject adds the conflicts c asks for and returns how many writes fail.
func (f *faults) inject(c *Conflict) int {
	n := c.writes()
	if c.Service == "" {
		f.conflicts += n
		return n
	}
	if f.conflictFor == nil {
		f.conflictFor = map[string]int{}
	}
	f.conflictFor[c.Service] += n
	return n
}

// Conflict makes the controller's next writes fail with a conflict (409):
// the next Count of them (0 means 1), or, with Service, the next Count
// writes of that Service.
type Conflict struct {
	Count   int    `json:"count,omitempty"`
	Service string `json:"service,omitempty"`
}

// writes is how many writes the step makes fail.
func (c *Conflict) writes() int { return max(c.Count, 1) }

func (c *Conflict) validate() error {
	if c.Count < 0 || c.Count > 1000 {
		return fmt.Errorf("count %d: must be 1-1000", c.Count)
	}
	if c.Service != "" {
		_, _, err := splitRef(c.Service)
		return err
	}
	return nil
}

// conflictFields are the fields of a conflict.
var conflictFields = []string{"count", "service"}

// decodeConflict reads conflict: (nothing), {}, N, NS/NAME, {count: N}
// or {service: NS/NAME} (with an optional count).
func decodeConflict(raw json.RawMessage) (*Conflict, error) {
	switch {
	case isNull(raw):
		return &Conflict{Count: 1}, nil
	case isString(raw):
		var s string
		_ = json.Unmarshal(raw, &s)
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return conflictCount(n)
		}
		ref, err := asService(raw)
		return &Conflict{Service: ref}, err
	case isNumber(raw):
		n, err := asInt(raw)
		if err != nil {
			return nil, err
		}
		return conflictCount(n)
	}
	m, err := fields(raw, "a count, NS/NAME, {count: N} or {service: NS/NAME}", conflictFields)
	if err != nil {
		return nil, err
	}
	c := &Conflict{}
	if v, ok := m["service"]; ok {
		if c.Service, err = asService(v); err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
	}
	if v, ok := m["count"]; ok {
		n, err := asInt(v)
		if err != nil {
			return nil, fmt.Errorf("count: %w", err)
		}
		if n < 1 {
			return nil, fmt.Errorf("count: want 1-1000, got %d", n)
		}
		c.Count = n
	} else if c.Service == "" {
		c.Count = 1 // conflict: {} is the next write
	}
	return c, nil
}

func conflictCount(n int) (*Conflict, error) {
	if n < 1 {
		return nil, fmt.Errorf("want a count of 1-1000, got %d", n)
	}
	return &Conflict{Count: n}, nil
}

// setLag plays lag.
func (s *simulator) setLag(n int) {
	s.faults.lag = n
	s.add(Row{Actor: "user", What: "lag", Detail: strconv.Itoa(n)})
}

// loseAnswers plays lose.
func (s *simulator) loseAnswers(n int) {
	s.faults.lost += n
	s.add(Row{Actor: "user", What: "lose", Detail: fmt.Sprintf("the answers to the next %d write(s)", n)})
}

// dropWrites plays drop.
func (s *simulator) dropWrites(n int) {
	s.faults.dropped += n
	s.add(Row{Actor: "user", What: "drop", Detail: fmt.Sprintf("the next %d write(s), on their way", n)})
}

// injectConflicts plays conflict.
func (s *simulator) injectConflicts(c *Conflict) {
	n := s.faults.inject(c)
	s.add(Row{Actor: "user", What: "conflict", Service: c.Service, Detail: fmt.Sprintf("next %d write(s)", n)})
}
