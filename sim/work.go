package sim

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// work lets the leader do one thing: deliver a lagging cache update, or
// process one queued key. It reports whether anything was left to do.
func (s *simulator) work() (bool, error) {
	acting := s.acting()
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

// syncOutOfTurn plays sync: the leader syncs the Service named key at
// once, ahead of the keys queued before it, as another of the controller's
// workers (or the work queue's back-off retry) may; its cache first shows
// every write made so far (a lag set earlier holds none back from it).
func (s *simulator) syncOutOfTurn(key string) error {
	r := s.replicas[s.leader]
	for r.cache.pos < len(s.cluster.log) {
		if k, ok := r.cache.advance(s.cluster); ok {
			r.observe(k)
			r.enqueue(k)
		}
	}
	if r.queued[key] {
		delete(r.queued, key)
		r.queue = slices.DeleteFunc(r.queue, func(k string) bool { return k == key })
	}
	s.add(Row{Actor: "user", What: "sync", Service: key, Detail: "synced out of turn by controller-" + strconv.Itoa(r.id)})
	return s.process(r, key)
}

// process is one sync of key by the controller's own engine. A write that
// met a conflict or got no answer is retried once the controller is idle,
// as the work queue's back-off would; a Service that cannot get an address
// waits to be woken, as it does in the controller.
func (s *simulator) process(r *replica, key string) error {
	// What a write of an earlier sync left behind (a resend whose answer
	// was lost) is not this sync's.
	s.outcome, s.broken, s.landedLost = "", nil, nil
	retry, err := r.engine.SyncService(s.ctx, key)
	if s.broken != nil {
		return s.broken
	}
	if err != nil || (retry && s.outcome != engine.Failed && s.outcome != engine.Held) {
		s.retry = append(s.retry, key)
	}
	return nil
}

// Observe implements engine.Observer: the trace rows, the counts and the
// checks of each write the controller made.
func (a *adapter) Observe(o engine.Outcome) {
	s, r, key, d := a.s, a.r, o.Key, o.Decision
	s.outcome = o.What
	for _, e := range d.Events {
		if o.What != engine.Rejected && o.What != engine.Uncertain {
			s.events[key] = append(s.events[key], e)
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
			return
		}
		checked := d
		if o.Resent {
			// It was decided before it was first sent, maybe under a
			// config that has changed since: its addresses may have left
			// the pool, as any Service's may. What it must never do is
			// collide; nor can it answer for what users did since it was
			// decided.
			checked.Allocated = false
			s.resending = true
		}
		err := s.checkWrite(r, key, o.From, o.Stored, checked)
		s.resending = false
		if err != nil && s.broken == nil {
			s.broken = err
		}
		s.res.Writes++
		if d.Allocated {
			s.res.Allocations++
		}
		s.landed(key, o.Stored)
		s.row(r, "write", key, d, o.Events, true)
	case engine.Uncertain, engine.Rejected:
		// A write whose answer was lost landed all the same, whatever
		// the controller made of the silence.
		if stored := s.landedLost; stored != nil {
			s.landedLost = nil
			if err := s.checkWrite(r, key, o.From, stored, d); err != nil && s.broken == nil {
				s.broken = err
			}
			s.res.Writes++
			s.landed(key, stored)
			s.add(Row{Actor: a.actor(), What: "lost", Service: key, Addresses: decide.JoinAddrs(d.Holding.Addrs), Message: "written, but the answer was lost"})
		}
	case engine.Failed:
		s.failed[key] = true
		s.reindex(key)
		s.row(r, "fail", key, d, o.Events, false)
	case engine.Held:
		switch {
		case d.Err != nil:
			// Carried but in conflict (a user's doing): reported.
			s.failed[key] = true
			s.reindex(key)
		case s.failed[key] && s.active > 1:
			// Two controllers acting at once may each name a different
			// loser of a collision users made: the Service counts as
			// holding only once no one reports it (an update or a write
			// clears the report). What a write gives is checked apart.
		case s.failed[key]:
			delete(s.failed, key)
			s.reindex(key)
		}
		s.row(r, "hold", key, d, o.Events, false)
	}
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

// reindex updates the indexes for key from the store: holders, the
// managed Services holding an address in their annotation (not reported as
// failed); carriers, every Service served on an address (InUse).
func (s *simulator) reindex(key string) {
	for _, a := range s.held[key] {
		delete(s.holders[a], key)
		s.touched[a] = true
	}
	delete(s.held, key)
	for _, a := range s.carried[key] {
		delete(s.carriers[a], key)
	}
	delete(s.carried, key)
	svc, ok := s.cluster.services[key]
	if !ok {
		return
	}
	if decide.IsLoadBalancer(svc) || svc.Labels[decide.LabelImplementation] == decide.ImplementationKubeVIP {
		for _, a := range decide.InUse(svc) {
			if s.carriers[a] == nil {
				s.carriers[a] = map[string]bool{}
			}
			s.carriers[a][key] = true
		}
		s.carried[key] = decide.InUse(svc)
	}
	if s.failed[key] || !decide.Managed(svc, s.dopts) || svc.Annotations[decide.AnnotationLoadBalancerIPs] == "" {
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

func collide[T comparable](a, b []T) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// servedOn returns the addresses a load-balancer may serve svc on: its
// status, and what it asks for. kube-vip reads the annotation first, so
// for a managed Service a spec.loadBalancerIP beside an annotation is
// stale, not served; another load-balancer may read either.
func (s *simulator) servedOn(svc *corev1.Service) []netip.Addr {
	all := decide.InUse(svc)
	if !decide.Managed(svc, s.dopts) || svc.Annotations[decide.AnnotationLoadBalancerIPs] == "" {
		return all
	}
	stale, err := netip.ParseAddr(strings.TrimSpace(svc.Spec.LoadBalancerIP))
	if err != nil || slices.Contains(decide.StatusAddresses(svc), stale.Unmap()) {
		return all
	}
	for _, e := range strings.Split(svc.Annotations[decide.AnnotationLoadBalancerIPs], ",") {
		if a, err := netip.ParseAddr(strings.TrimSpace(e)); err == nil && a.Unmap() == stale.Unmap() {
			return all
		}
	}
	return slices.DeleteFunc(all, func(a netip.Addr) bool { return a == stale.Unmap() })
}

// known returns the Service named key as the controller could know it:
// as its own last write left it, else as the newer of its cache and its
// last read from the API server itself (nil when neither shows it). A
// user's change neither has shown yet is a race the controller cannot
// see; it is judged once the controller has settled.
func (s *simulator) known(r *replica, key string) *corev1.Service {
	if s.controllersDoing(key) {
		return s.cluster.services[key]
	}
	cached := r.cache.services[key]
	if live := r.live[key]; live != nil && (cached == nil || rv(live) > rv(cached)) {
		return live // read from the API server itself, newer than the cache
	}
	return cached
}

// rv is a stored Service's resourceVersion as a number (the simulated
// API server counts them).
func rv(svc *corev1.Service) int64 {
	n, _ := strconv.ParseInt(svc.ResourceVersion, 10, 64)
	return n
}

// mayShare reports whether other, as the controller could know it, may
// share a with the Service after: a managed LoadBalancer whose request is
// valid, with ports that do not collide; for an automatic address it must
// also hold a (annotation, spec.loadBalancerIP, or adopted from status), for an
// automatic address also in the same pool, both namespaces allowing it.
func (s *simulator) mayShare(cfg *allocator.Config, after, other *corev1.Service, a netip.Addr, auto bool) (bool, string) {
	if !decide.Managed(other, s.dopts) {
		return false, "the other is not managed by this controller"
	}
	as, _, err := decide.Addresses(other)
	if err == nil && len(as) == 0 {
		as = decide.StatusAddresses(other) // adopted, as the controller does
	}
	if err != nil || !decide.OnePerFamily(as) {
		return false, "the other's request is not valid"
	}
	if auto && !slices.Contains(as, a) {
		// Served on it still (its status, a stale spec.loadBalancerIP),
		// but no longer holding it: shared on request only.
		return false, "the other does not hold it"
	}
	pp, op := decide.Ports(after), decide.Ports(other)
	if len(pp) == 0 || len(op) == 0 || collide(pp, op) {
		return false, fmt.Sprintf("ports %v and %v", pp, op)
	}
	if !auto {
		return true, ""
	}
	pool := cfg.PoolFor(after.Namespace)
	if !cfg.AllowShare(after.Namespace) || !cfg.AllowShare(other.Namespace) {
		return false, "sharing is not allowed"
	}
	if cfg.PoolFor(other.Namespace) != pool {
		return false, "they draw from different pools"
	}
	return true, ""
}

// followsPolicy reports whether a change of the annotation only follows
// the Service's ipFamilyPolicy: a dual-stack policy adds an address of the
// other family, keeping the one it had; SingleStack releases the address
// of the family it no longer wants, keeping the other. Nothing else may
// move.
func followsPolicy(before, after *corev1.Service) bool {
	was, _, err1 := decide.Addresses(before)
	now, _, err2 := decide.Addresses(after)
	if err1 != nil || err2 != nil {
		return false
	}
	policy := corev1.IPFamilyPolicySingleStack
	if after.Spec.IPFamilyPolicy != nil {
		policy = *after.Spec.IPFamilyPolicy
	}
	switch {
	case policy != corev1.IPFamilyPolicySingleStack && len(was) == 1 && len(now) == 2:
		return slices.Contains(now, was[0]) && now[0].Is4() != now[1].Is4()
	case policy == corev1.IPFamilyPolicySingleStack && len(was) == 2 && len(now) == 1:
		return slices.Contains(was, now[0])
	}
	return false
}

// checkWrite checks one controller write. Every address it gives is one
// no other Service is served on (annotation of any Service, managed or
// not, valid or not; spec.loadBalancerIP; status.loadBalancer.ingress),
// unless both are managed holders that may share it; an automatic address
// is inside the Service's pool. No Service that is still a LoadBalancer
// loses or changes the address it held.
func (s *simulator) checkWrite(r *replica, key string, before, after *corev1.Service, d decide.Decision) error {
	old := before.Annotations[decide.AnnotationLoadBalancerIPs]
	now := after.Annotations[decide.AnnotationLoadBalancerIPs]
	if old != "" && old != now && decide.IsLoadBalancer(after) && !followsPolicy(before, after) {
		return s.invariant(fmt.Sprintf("the controller changed the address of a LoadBalancer from %s to %q", old, now), key)
	}
	if d.Action != decide.Write || old == now {
		// Nothing changed in what the Service carries (a label, a
		// finalizer): the write gave it nothing new.
		return nil
	}
	served := decide.StatusAddresses(before)
	had, _, _ := decide.Addresses(before)
	for _, a := range d.Holding.Addrs {
		if a.IsUnspecified() || slices.Contains(served, a) {
			continue // adopted: a load-balancer serves it on a already
		}
		if old != "" && slices.Contains(had, a) {
			continue // it carried a already: the write gives it nothing new
		}
		for _, other := range sortedKeys(s.carriers[a]) {
			if other == key || (s.resending && !s.controllersDoing(other)) {
				continue
			}
			o := s.known(r, other)
			if o == nil || !slices.Contains(s.servedOn(o), a) {
				continue // it could not know, or no one serves o there
			}
			if !decide.IsLoadBalancer(o) {
				continue // no longer a LoadBalancer: not served
			}
			if ok, why := s.mayShare(r.engine.Config(), after, o, a, d.Allocated); !ok {
				return s.invariant(fmt.Sprintf("address %s is held by two Services that may not share: the controller gave it while the other is served on it (%s)", a, why), key, other)
			}
		}
	}
	if !d.Allocated {
		return nil
	}
	// The writer's config: with two active controllers, each has its own.
	pool := r.engine.Config().PoolFor(after.Namespace)
	for _, a := range d.Holding.Addrs {
		if a.IsUnspecified() && pool != nil && pool.DHCP() {
			continue
		}
		if pool == nil || !pool.Contains(a) {
			return s.invariant(fmt.Sprintf("automatically assigned %s is outside the Service's pool", a), key)
		}
		if allocator.SubnetRouterAnycast(a) {
			return s.invariant(fmt.Sprintf("automatically assigned %s is a Subnet-Router anycast address", a), key)
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
