package sim

import (
	"errors"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// work lets the leader do one thing: deliver a lagging cache update, or
// process one queued key. It reports whether anything was left to do.
func (s *simulator) work() (bool, error) {
	if s.ctl.stopped {
		return false, nil
	}
	acting := s.ctl.acting()
	if len(acting) > 1 {
		// Two controllers act at once: a seeded one goes first; when
		// it has nothing to do, the other.
		first := s.rng.IntN(len(acting))
		for i := range acting {
			if did, err := s.workOn(acting[(first+i)%len(acting)]); did || err != nil {
				return did, err
			}
		}
		return false, nil
	}
	return s.workOn(acting[0])
}

// workOn lets replica r do one thing.
func (s *simulator) workOn(r *replica) (bool, error) {
	// The informer delivers every write older than the lag at once...
	r.deliver(s.cluster, len(s.cluster.log)-s.faults.lag)
	key, ok := r.pop()
	if !ok {
		// ...and, when the controller is idle, the rest one by one.
		if r.deliver(s.cluster, r.cache.pos+1) {
			return true, nil
		}
		if len(s.ctl.retry) > 0 {
			for _, k := range s.ctl.retry {
				r.enqueue(k)
			}
			s.ctl.retry = nil
			return true, nil
		}
		return false, nil
	}
	return true, s.process(r, key)
}

// process is one sync of key by the controller's own engine, whose Result
// it follows: BackOff (or an error) is retried once the controller is
// idle, as the work queue's back-off would; Wait parks the key until the
// engine wakes it (the work queue's back-off retries it too, but a retry
// that finds nothing freed changes nothing); Done forgets it.
//
// The first invariant the sync's writes broke (the engine tells its
// Observer of each write, and the Observer returns nothing) is handed to
// process through the adapter's broke, set for this sync only, and
// returned: the sync's writes, not an earlier one's.
func (s *simulator) process(r *replica, key string) error {
	var broken error
	r.adapter.broke = func(err error) {
		if broken == nil {
			broken = err
		}
	}
	defer func() { r.adapter.broke = nil }()
	res, err := r.engine.SyncService(s.ctx, key)
	if broken != nil {
		return broken
	}
	if err != nil || res == engine.BackOff {
		s.ctl.retry = append(s.ctl.retry, key)
	}
	return nil
}

// Observe implements engine.Observer: the trace rows, the counts and the
// checks of each write the controller made; an invariant a write broke
// goes to the sync in progress.
func (a *adapter) Observe(o engine.Outcome) {
	if err := a.observe(o); err != nil && a.broke != nil {
		a.broke(err)
	}
}

// observe adds the rows and counts of an outcome, checks the writes it
// made and returns the first invariant they broke.
func (a *adapter) observe(o engine.Outcome) (broken error) {
	s, r, key, d := a.s, a.r, o.Key, o.Decision
	for _, e := range d.Events {
		if o.What != engine.Rejected && o.What != engine.Uncertain {
			s.outcomes.events[key] = append(s.outcomes.events[key], e)
		}
	}
	switch o.What {
	case engine.Written:
		if o.Resent && o.From == nil {
			// A write whose answer was lost had landed: checked then.
			if d.Allocated {
				s.res.Allocations++
			}
			s.row(r, "write", key, d, o.Events, true)
			return nil
		}
		checked := d
		if o.Resent {
			// It was decided before it was first sent, maybe under a
			// config that has changed since: its addresses may have left
			// the pool, as any Service's may. What it must never do is
			// collide; nor can it answer for what users did since it was
			// decided.
			checked.Allocated = false
		}
		broken = s.checkWrite(r, key, o.From, o.Stored, checked, o.Resent)
		s.res.Writes++
		if d.Allocated {
			s.res.Allocations++
		}
		s.landed(key, o.Stored)
		s.row(r, "write", key, d, o.Events, true)
	case engine.Uncertain, engine.Rejected:
		// A write whose answer was lost landed all the same, whatever
		// the controller made of the silence.
		if la := (*lostAnswer)(nil); errors.As(o.Err, &la) {
			stored := la.stored
			broken = s.checkWrite(r, key, o.From, stored, d, false)
			s.res.Writes++
			s.landed(key, stored)
			s.add(Row{Actor: a.actor(), What: "lost", Service: key, Addresses: decide.JoinAddrs(d.Holding.Addrs), Message: "written, but the answer was lost"})
		}
	case engine.Failed:
		s.outcomes.failed[key] = true
		s.reindex(key)
		s.row(r, "fail", key, d, o.Events, false)
	case engine.Held:
		switch {
		case d.Err != nil:
			// Carried but in conflict (a user's doing): reported.
			s.outcomes.failed[key] = true
			s.reindex(key)
		case s.outcomes.failed[key] && s.ctl.active > 1:
			// Two controllers acting at once may each name a different
			// loser of a collision users made: the Service counts as
			// holding only once no one reports it (an update or a write
			// clears the report). What a write gives is checked apart.
		case s.outcomes.failed[key]:
			delete(s.outcomes.failed, key)
			s.reindex(key)
		}
		s.row(r, "hold", key, d, o.Events, false)
	}
	return broken
}

// outcomes are what the controller's syncs left for each Service, as the
// trace and the checks need them: the Events recorded on it (events),
// whether its last decision was a failure it reported (failed), and the
// resourceVersion of the controller's last write of it (granted).
type outcomes struct {
	events  map[string][]decide.Event
	failed  map[string]bool
	granted map[string]string
}

func newOutcomes() outcomes {
	return outcomes{events: map[string][]decide.Event{}, failed: map[string]bool{}, granted: map[string]string{}}
}

// forget drops what is known of the Service named key (it is deleted).
func (o *outcomes) forget(key string) {
	delete(o.events, key)
	delete(o.failed, key)
	delete(o.granted, key)
}

// row adds the rows of an outcome: one per Event the controller recorded;
// a write is shown even without Events.
func (s *simulator) row(r *replica, what, key string, d decide.Decision, recorded []decide.Event, write bool) {
	actor := "controller-" + strconv.Itoa(r.id)
	addrs := decide.JoinAddrs(d.Holding.Addrs)
	for _, e := range recorded {
		s.add(Row{Actor: actor, What: what, Service: key, Addresses: addrs, Reason: e.Reason, Message: e.Message})
	}
	if len(recorded) == 0 && write {
		s.add(Row{Actor: actor, What: what, Service: key, Addresses: addrs})
	}
}

// landed notes a controller write that reached the store.
func (s *simulator) landed(key string, updated *corev1.Service) {
	delete(s.outcomes.failed, key)
	s.outcomes.granted[key] = updated.ResourceVersion
	s.reindex(key)
}

// controllersDoing reports whether the Service named key is as the
// controller's last write left it, carrying addresses: then the controller
// must know of them, whether or not its cache has shown them yet.
func (s *simulator) controllersDoing(key string) bool {
	svc := s.cluster.services[key]
	return svc != nil && s.outcomes.granted[key] == svc.ResourceVersion && svc.Annotations[decide.AnnotationLoadBalancerIPs] != ""
}
