package decide

// EventMemory remembers, per Service, the Events its last decision that had
// any recorded, so that deciding the same again (on every resync, config
// change or retry) records nothing new. It is shared by the controller and
// the simulator. It is not safe for concurrent use.
type EventMemory struct {
	last map[string]map[Event]bool
	// once holds, per Service, the Events recorded with Once.
	once map[string]map[Event]bool
}

// NewEventMemory returns an empty EventMemory.
func NewEventMemory() *EventMemory {
	return &EventMemory{last: map[string]map[Event]bool{}, once: map[string]map[Event]bool{}}
}

// Once returns the Events of evs that the Service named key has not been
// given yet with Once, and remembers them: each is recorded once per
// Service (until it is forgotten), whatever else is recorded in between.
func (m *EventMemory) Once(key string, evs []Event) []Event {
	var out []Event
	for _, e := range evs {
		if m.once[key][e] {
			continue
		}
		if m.once[key] == nil {
			m.once[key] = map[Event]bool{}
		}
		m.once[key][e] = true
		out = append(out, e)
	}
	return out
}

// Fresh returns the Events of evs to record for the Service named key: all
// of them when force is set (they come with a write), else those that its
// last decision with Events did not have. A decision without Events leaves
// the memory as it is.
func (m *EventMemory) Fresh(key string, evs []Event, force bool) []Event {
	if len(evs) == 0 {
		return nil
	}
	prev := m.last[key]
	next := make(map[Event]bool, len(evs))
	var out []Event
	for _, e := range evs {
		next[e] = true
		if force || !prev[e] {
			out = append(out, e)
		}
	}
	m.last[key] = next
	return out
}

// Forget drops what the Service named key recorded (it was deleted).
func (m *EventMemory) Forget(key string) {
	delete(m.last, key)
	delete(m.once, key)
}
