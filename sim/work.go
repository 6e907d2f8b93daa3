package sim

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// work lets the leader do one thing: deliver a lagging cache update, or
// process one queued key. It reports whether anything was left to do.
func (s *simulator) work() (bool, error) {
	r := s.replicas[s.leader]
	// The informer delivers every write older than the lag at once...
	for r.cache.pos < len(s.cluster.log)-s.lag {
		if k, ok := r.cache.advance(s.cluster); ok {
			r.observe(k)
			r.enqueue(k)
		}
	}
	key, ok := r.pop()
	if !ok {
		// ...and, when the controller is idle, the rest one by one.
		if k, ok := r.cache.advance(s.cluster); ok {
			r.observe(k)
			r.enqueue(k)
			return true, nil
		}
		if len(s.retry) > 0 {
			for _, k := range s.retry {
				r.enqueue(k)
			}
			s.retry = nil
			return true, nil
		}
		return false, nil
	}
	return true, s.process(r, key)
}

// process is the controller's sync of one key, as controller.syncService.
func (s *simulator) process(r *replica, key string) error {
	actor := fmt.Sprintf("controller-%d", r.id)
	svc, ok := r.cache.services[key]
	if !r.noLedger {
		if pending, uncertain := r.ledger.Uncertain(key); uncertain {
			// The answer to our last write of it was lost: ask the API
			// server rather than the cache, as controller.settleUncertain.
			svc, ok = s.cluster.services[key]
			switch {
			case !ok:
			case pending.Landed(svc):
				if pending.Allocated {
					s.res.Allocations++
				}
				s.record(r, "write", key, pending)
			case svc.ResourceVersion == pending.Service.ResourceVersion:
				// It may still land: send the same write again.
				return s.resend(r, key, svc, pending)
			}
		}
	}
	if !ok {
		_, held := r.ledger.Usage().Holding(key)
		r.ledger.Forget(key)
		delete(r.waiting, key)
		r.seen.Forget(key)
		if held {
			r.wake()
		}
		return nil
	}
	var d decide.Decision
	if r.noLedger {
		usage, _ := decide.Rebuild(s.cfg, r.cache.list(), s.dopts)
		usage.Release(key)
		d = decide.Decide(s.cfg, usage, svc, s.dopts)
	} else {
		if r.ledger.Stale(svc) {
			return nil
		}
		_, heldBefore := r.ledger.Usage().Holding(key)
		if _, uncertain := r.ledger.Uncertain(key); uncertain {
			d = r.ledger.DecideLive(s.cfg, svc, s.dopts)
		} else {
			d = r.ledger.Decide(s.cfg, svc, s.dopts)
		}
		if _, heldAfter := r.ledger.Usage().Holding(key); heldBefore && !heldAfter {
			r.wake()
		}
	}
	if d.Action == decide.Fail || (d.Action == decide.Hold && d.Err != nil) {
		r.waiting[key] = true
	} else {
		delete(r.waiting, key)
	}

	switch d.Action {
	case decide.Write, decide.Release:
		if d.Service == nil {
			return nil
		}
		if s.conflicts > 0 || s.conflictFor[key] > 0 {
			if s.conflictFor[key] > 0 {
				s.conflictFor[key]--
			} else {
				s.conflicts--
			}
			s.writeFailed(r, d)
			s.retry = append(s.retry, key)
			s.add(Row{Actor: actor, What: "conflict", Service: key, Message: "injected 409"})
			return nil
		}
		if s.dropped > 0 {
			// Lost on its way: it never lands, the controller hears a
			// time-out and cannot tell it from a lost answer.
			s.dropped--
			if !r.noLedger {
				r.ledger.WriteUncertain(d)
			}
			s.retry = append(s.retry, key)
			s.add(Row{Actor: actor, What: "dropped", Service: key, Message: "the write was lost on its way"})
			return nil
		}
		before := s.cluster.services[key]
		updated, ok := s.cluster.update(d.Service)
		if !ok {
			s.writeFailed(r, d)
			s.add(Row{Actor: actor, What: "conflict", Service: key, Message: "stale resourceVersion"})
			return nil
		}
		if err := s.checkWrite(r, key, before, updated, d); err != nil {
			return err
		}
		if s.lost > 0 {
			// It landed, but the controller hears a time-out.
			s.lost--
			switch {
			case r.noLedger:
			case s.opts.ForgetLostWrites:
				r.ledger.WriteFailed(d)
			default:
				r.ledger.WriteUncertain(d)
			}
			s.retry = append(s.retry, key)
			s.res.Writes++
			s.landed(key, updated)
			s.add(Row{Actor: actor, What: "lost", Service: key, Addresses: decide.JoinAddrs(d.Holding.Addrs), Message: "written, but the answer was lost"})
			return nil
		}
		s.written(r, key, d, updated)
	case decide.Fail:
		s.failed[key] = true
		s.reindex(key)
		s.record(r, "fail", key, d)
	case decide.Hold:
		if d.Err != nil {
			// Carried but in conflict (a user's doing): reported.
			s.failed[key] = true
			s.reindex(key)
		} else if s.failed[key] {
			delete(s.failed, key)
			s.reindex(key)
		}
		s.record(r, "hold", key, d)
	}
	return nil
}

// resend sends a write of unknown outcome again, to the same version, as
// controller.settleUncertain does when the Service has not moved on.
func (s *simulator) resend(r *replica, key string, live *corev1.Service, pending decide.Decision) error {
	updated, ok := s.cluster.update(pending.Service)
	if !ok {
		s.retry = append(s.retry, key) // still unknown: read again
		return nil
	}
	// It was decided before it was first sent, maybe under a config that
	// has changed since: its addresses may have left the pool, as any
	// Service's may. What it must never do is collide.
	// Nor can it answer for what users did since it was decided: a
	// Service they gave one of its addresses meanwhile is their doing.
	checked := pending
	checked.Allocated = false
	s.resending = true
	err := s.checkWrite(r, key, live, updated, checked)
	s.resending = false
	if err != nil {
		return err
	}
	s.written(r, key, pending, updated)
	return nil
}

// written ends a write of d that reached the store and whose answer the
// controller heard.
func (s *simulator) written(r *replica, key string, d decide.Decision, updated *corev1.Service) {
	if !r.noLedger {
		r.ledger.Written(d, updated.ResourceVersion)
		if d.Action == decide.Release {
			r.wake()
		}
	}
	s.res.Writes++
	if d.Allocated {
		s.res.Allocations++
	}
	s.landed(key, updated)
	s.record(r, "write", key, d)
}

func (s *simulator) writeFailed(r *replica, d decide.Decision) {
	if !r.noLedger {
		r.ledger.WriteFailed(d)
	}
}

// record adds the rows of a decision: one per Event the controller would
// record. Like the controller, it skips an Event identical to the last one
// recorded for the Service unless it comes with a write, so a hold that
// repeats what the write said is not shown twice. A write is shown even
// without Events; a hold or a failure that records nothing is not.
func (s *simulator) record(r *replica, what, key string, d decide.Decision) {
	actor := fmt.Sprintf("controller-%d", r.id)
	addrs := decide.JoinAddrs(d.Holding.Addrs)
	force := what == "write"
	for _, e := range d.Events {
		s.events[key] = append(s.events[key], e)
	}
	shown := r.seen.Fresh(key, d.Events, force)
	for _, e := range shown {
		s.add(Row{Actor: actor, What: what, Service: key, Addresses: addrs, Reason: e.Reason, Message: e.Message})
	}
	if len(shown) == 0 && force {
		s.add(Row{Actor: actor, What: what, Service: key, Addresses: addrs})
	}
}

// landed notes a controller write that reached the store.
func (s *simulator) landed(key string, updated *corev1.Service) {
	delete(s.failed, key)
	s.granted[key] = updated.ResourceVersion
	s.reindex(key)
}

// controllersDoing reports whether the Service named key is as the
// controller's last write left it, carrying addresses: then the controller
// must know of them, whether or not its cache has shown them yet.
func (s *simulator) controllersDoing(key string) bool {
	svc := s.cluster.services[key]
	return svc != nil && s.granted[key] == svc.ResourceVersion && svc.Annotations[decide.AnnotationLoadBalancerIPs] != ""
}

// reindex updates the holders index for key from the store.
func (s *simulator) reindex(key string) {
	for _, a := range s.held[key] {
		delete(s.holders[a], key)
		s.touched[a] = true
	}
	delete(s.held, key)
	svc, ok := s.cluster.services[key]
	if !ok || s.failed[key] || !decide.IsLoadBalancer(svc) || !decide.Managed(svc, s.dopts) {
		return
	}
	v := svc.Annotations[decide.AnnotationLoadBalancerIPs]
	if v == "" {
		return
	}
	as, _, err := decide.Addresses(svc)
	if err != nil {
		return
	}
	for _, a := range as {
		if a.IsUnspecified() {
			continue
		}
		if s.holders[a] == nil {
			s.holders[a] = map[string]bool{}
		}
		s.holders[a][key] = true
		s.touched[a] = true
	}
	s.held[key] = as
}

// checkTouched checks the addresses whose holders changed in this step: no
// address is held by two Services unless their ports allow it.
func (s *simulator) checkTouched() error {
	addrs := make([]netip.Addr, 0, len(s.touched))
	for a := range s.touched {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	s.touched = map[netip.Addr]bool{}
	for _, a := range addrs {
		keys := sortedKeys(s.holders[a])
		for i := 0; i < len(keys); i++ {
			for j := i + 1; j < len(keys); j++ {
				p, q := s.cluster.services[keys[i]], s.cluster.services[keys[j]]
				pp, qp := decide.Ports(p), decide.Ports(q)
				if len(pp) == 0 || len(qp) == 0 || collide(pp, qp) {
					return s.invariant(fmt.Sprintf("address %s is held by two Services that may not share (ports %v and %v)", a, pp, qp), keys[i], keys[j])
				}
			}
		}
	}
	return nil
}

// unseenChange reports whether a user changed the Service named key in a
// way the controller could not know yet: its ledger records other ports
// for it (or, without a ledger, its cache shows an older version). Such a
// race is judged once the controller has settled, not at write time.
func (s *simulator) unseenChange(r *replica, key string) bool {
	cur := s.cluster.services[key]
	if r.noLedger {
		seen, ok := r.cache.services[key]
		return !ok || !slices.Equal(decide.Ports(seen), decide.Ports(cur))
	}
	h, ok := r.ledger.Usage().Holding(key)
	if !ok {
		seen, inCache := r.cache.services[key]
		return !inCache || seen.ResourceVersion != cur.ResourceVersion
	}
	return !slices.Equal(h.Ports, decide.Ports(cur))
}

func collide[T comparable](a, b []T) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// checkWrite checks one controller write: an automatic address is inside
// the Service's pool and, when shared, sharing was allowed and every holder
// draws from that same pool; no Service that
// is still a LoadBalancer loses or changes the address it held.
func (s *simulator) checkWrite(r *replica, key string, before, after *corev1.Service, d decide.Decision) error {
	old := before.Annotations[decide.AnnotationLoadBalancerIPs]
	now := after.Annotations[decide.AnnotationLoadBalancerIPs]
	if old != "" && old != now && decide.IsLoadBalancer(after) {
		return s.invariant(fmt.Sprintf("the controller changed the address of a LoadBalancer from %s to %q", old, now), key)
	}
	if d.Action != decide.Write || old == now {
		// Nothing changed in what the Service carries (a label, a
		// finalizer): the write gave it nothing new.
		return nil
	}
	for _, a := range d.Holding.Addrs {
		for _, other := range sortedKeys(s.holders[a]) {
			if other == key || a.IsUnspecified() || ((s.resending || s.unseenChange(r, other)) && !s.controllersDoing(other)) {
				continue
			}
			o := s.cluster.services[other]
			if pp, op := decide.Ports(after), decide.Ports(o); len(pp) == 0 || len(op) == 0 || collide(pp, op) {
				return s.invariant(fmt.Sprintf("address %s is held by two Services that may not share: the controller wrote it while the other held it (ports %v and %v)", a, pp, op), key, other)
			}
		}
	}
	if !d.Allocated {
		return nil
	}
	pool := s.cfg.PoolFor(after.Namespace)
	for _, a := range d.Holding.Addrs {
		if a.IsUnspecified() && pool != nil && pool.DHCP() {
			continue
		}
		if pool == nil || !pool.Contains(a) {
			return s.invariant(fmt.Sprintf("automatically assigned %s is outside the Service's pool", a), key)
		}
		for _, other := range sortedKeys(s.holders[a]) {
			if other == key || s.unseenChange(r, other) {
				continue
			}
			o := s.cluster.services[other]
			if !s.cfg.AllowShare(after.Namespace) || !s.cfg.AllowShare(o.Namespace) || !pool.Contains(a) {
				return s.invariant(fmt.Sprintf("address %s is held by two Services that may not share (sharing is not allowed)", a), key, other)
			}
			if op := s.cfg.PoolFor(o.Namespace); op != pool {
				name := "none"
				if op != nil {
					name = op.Name()
				}
				return s.invariant(fmt.Sprintf("address %s is shared by Services of different pools (%q and %q)", a, pool.Name(), name), key, other)
			}
		}
	}
	return nil
}

// checkQuiet runs once the controller has settled: every managed
// LoadBalancer has an address or a reported reason, and a requested
// address is honoured or reported.
func (s *simulator) checkQuiet() error {
	for _, key := range s.cluster.keys() {
		svc := s.cluster.services[key]
		if !decide.Managed(svc, s.dopts) {
			continue
		}
		as, _, err := decide.Addresses(svc)
		reported := s.failed[key] && hasReason(s.events[key], decide.ReasonAllocationFailed)
		if err == nil && svc.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
			continue
		}
		if reported {
			continue
		}
		what := "has no address and no reported reason"
		if err == nil && len(as) > 0 {
			what = fmt.Sprintf("requested %s, neither honoured nor reported", decide.JoinAddrs(as))
		}
		return s.invariant("once quiet, a LoadBalancer "+what, key)
	}
	return nil
}
