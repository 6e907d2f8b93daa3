package decide

import (
	"reflect"
	"testing"
)

func TestEventMemoryRecordsOnlyWhatIsNew(t *testing.T) {
	assigned := Event{EventNormal, ReasonAddressAssigned, "assigned 2001:db8::1,10.0.0.1"}
	out4 := Event{EventWarning, ReasonAddressOutsidePool, "address 10.0.0.1 is outside"}
	out6 := Event{EventWarning, ReasonAddressOutsidePool, "address 2001:db8::1 is outside"}
	exhausted := Event{EventWarning, ReasonAllocationFailed, "PoolExhausted"}
	m := NewEventMemory()
	steps := []struct {
		name  string
		evs   []Event
		force bool
		want  []Event
	}{
		{"a write records all", []Event{assigned, out6, out4}, true, []Event{assigned, out6, out4}},
		{"the same two warnings again: nothing", []Event{out6, out4}, false, nil},
		{"once more, other order: nothing", []Event{out4, out6}, false, nil},
		{"a decision without Events changes nothing", nil, false, nil},
		{"still nothing", []Event{out6, out4}, false, nil},
		{"one warning gone, the other repeats: nothing", []Event{out4}, false, nil},
		{"the other comes back: recorded", []Event{out4, out6}, false, []Event{out6}},
		{"something else: recorded", []Event{exhausted}, false, []Event{exhausted}},
		{"a forced repeat: recorded", []Event{exhausted}, true, []Event{exhausted}},
	}
	for _, st := range steps {
		if got := m.Fresh("ns/a", st.evs, st.force); !reflect.DeepEqual(got, st.want) {
			t.Fatalf("%s: recorded %v, want %v", st.name, got, st.want)
		}
	}
	m.Forget("ns/a")
	if got := m.Fresh("ns/a", []Event{exhausted}, false); len(got) != 1 {
		t.Fatalf("after Forget: %v, want the Event recorded", got)
	}
	if got := m.Fresh("ns/b", []Event{exhausted}, false); len(got) != 1 {
		t.Fatal("another Service's memory is its own")
	}
}
