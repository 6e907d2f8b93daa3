package sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// kindRestart is the restart step: the leader's process (after a stop, every one) starts afresh.
func kindRestart() stepKind {
	return stepKind{
		name: "restart", example: "restart: {}", bare: true,
		value:    func(st *Step) any { return orNil(st.Restart) },
		decode:   func(st *Step, raw json.RawMessage) error { return decodeEmpty(&st.Restart, raw) },
		validate: func(*Step) error { return nil },
		play:     func(s *simulator, _ *Step) error { s.restart(); return nil },
	}
}

// kindStop is the stop step: every controller process stops.
func kindStop() stepKind {
	return stepKind{
		name: "stop", example: "stop: {}", bare: true,
		value:    func(st *Step) any { return orNil(st.Stop) },
		decode:   func(st *Step, raw json.RawMessage) error { return decodeEmpty(&st.Stop, raw) },
		validate: func(*Step) error { return nil },
		play:     func(s *simulator, _ *Step) error { return s.stop() },
	}
}

// kindReplicas is the replicas step: one or two controller processes run.
func kindReplicas() stepKind {
	return stepKind{
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
	}
}

// kindHandover is the handover step: the leadership passes to the other replica.
func kindHandover() stepKind {
	return stepKind{
		name: "handover", example: "handover: {}", bare: true,
		value:    func(st *Step) any { return orNil(st.Handover) },
		decode:   func(st *Step, raw json.RawMessage) error { return decodeEmpty(&st.Handover, raw) },
		validate: func(*Step) error { return nil },
		play:     func(s *simulator, _ *Step) error { return s.handover() },
	}
}

// kindActive is the active step: one or both replicas act as leader.
func kindActive() stepKind {
	return stepKind{
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
	}
}

// kindSync is the sync step: the leader syncs one Service out of turn.
func kindSync() stepKind {
	return stepKind{
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
	}
}

// kindSettle is the settle step: the controller finishes its work.
func kindSettle() stepKind {
	return stepKind{
		name: "settle", example: "settle: {}", bare: true, settles: true,
		value:    func(st *Step) any { return orNil(st.Settle) },
		decode:   func(st *Step, raw json.RawMessage) error { return decodeEmpty(&st.Settle, raw) },
		validate: func(*Step) error { return nil },
		play:     func(s *simulator, _ *Step) error { return s.settleStep() },
	}
}

// restart plays restart: the leader's process starts afresh; after a
// stop, every replica's.
func (s *simulator) restart() {
	s.add(Row{Actor: "user", What: "restart"})
	if s.ctl.stopped {
		s.ctl.stopped = false
		for i := range s.ctl.replicas {
			s.ctl.restart(i, s.newReplica)
		}
		return
	}
	s.ctl.restart(s.ctl.leader, s.newReplica)
}

// stop plays stop: every controller process stops (it does no work, and
// hears of nothing) until a restart starts them afresh.
func (s *simulator) stop() error {
	if s.ctl.stopped {
		return fmt.Errorf("step %d (stop): the controller is stopped already", s.step)
	}
	s.ctl.stopped = true
	s.ctl.active = 1
	s.add(Row{Actor: "user", What: "stop"})
	return nil
}

// running reports an error for a step that needs a running controller.
func (s *simulator) running(kind string) error {
	if s.ctl.stopped {
		return fmt.Errorf("step %d (%s): the controller is stopped: restart it first", s.step, kind)
	}
	return nil
}

// setReplicas plays replicas.
func (s *simulator) setReplicas(n int) {
	if n < 2 {
		s.ctl.active = 1
	}
	s.ctl.scale(n, s.newReplica)
	s.add(Row{Actor: "user", What: "replicas", Detail: fmt.Sprintf("%d, leader is controller-%d", len(s.ctl.replicas), s.ctl.leading().id)})
}

// setActive plays active: with 2, both replicas act as leader at once (a
// stale leader that keeps writing after losing its Lease, or an old and a
// new controller side by side during an upgrade); with 1, the leader alone.
func (s *simulator) setActive(n int) error {
	if err := s.running("active"); err != nil {
		return err
	}
	if n == 2 && len(s.ctl.replicas) < 2 {
		return fmt.Errorf("step %d (active): needs replicas: 2 first", s.step)
	}
	s.ctl.active = n
	s.add(Row{Actor: "user", What: "active", Detail: fmt.Sprintf("%d controller(s) act at once", n)})
	for _, r := range s.ctl.acting() {
		// A running controller's informer has the ConfigMap in force.
		r.engine.SetConfig(s.ctx, s.cm.kubevip()) // wakes every Service
	}
	return nil
}

// handover plays handover.
func (s *simulator) handover() error {
	if err := s.running("handover"); err != nil {
		return err
	}
	if len(s.ctl.replicas) < 2 {
		return fmt.Errorf("step %d (handover): needs replicas: 2 first", s.step)
	}
	// The new leader builds its ledger from a fresh list after it has
	// won the Lease, as the real controller does after WaitForCacheSync;
	// the old one stops.
	s.ctl.leader = (s.ctl.leader + 1) % len(s.ctl.replicas)
	s.ctl.restart(s.ctl.leader, s.newReplica)
	s.add(Row{Actor: "user", What: "handover", Detail: fmt.Sprintf("leader is controller-%d", s.ctl.leading().id)})
	return nil
}

// syncOutOfTurn plays sync: the leader syncs the Service named key at
// once, ahead of the keys queued before it, as another of the controller's
// workers (or the work queue's back-off retry) may; its cache first shows
// every write made so far (a lag set earlier holds none back from it).
func (s *simulator) syncOutOfTurn(key string) error {
	if err := s.running("sync"); err != nil {
		return err
	}
	r := s.ctl.leading()
	r.deliver(s.cluster, len(s.cluster.log))
	if r.queued[key] {
		delete(r.queued, key)
		r.queue = slices.DeleteFunc(r.queue, func(k string) bool { return k == key })
	}
	s.add(Row{Actor: "user", What: "sync", Service: key, Detail: "synced out of turn by controller-" + strconv.Itoa(r.id)})
	return s.process(r, key)
}

// settleStep plays settle: shown, so that the step numbers do not skip.
func (s *simulator) settleStep() error {
	s.add(Row{Actor: "user", What: "settle"})
	return s.settle()
}
