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
)

// addrIndex indexes Services by address, for the invariants: holders,
// per address, the managed Services the store shows holding it in their
// annotation (not reported as failed); carriers, every Service served on
// it (InUse); touched, the addresses whose holders changed since the last
// check.
type addrIndex struct {
	holders  map[netip.Addr]map[string]bool
	held     map[string][]netip.Addr
	carriers map[netip.Addr]map[string]bool
	carried  map[string][]netip.Addr
	touched  map[netip.Addr]bool
}

func newAddrIndex() addrIndex {
	return addrIndex{holders: map[netip.Addr]map[string]bool{}, held: map[string][]netip.Addr{},
		carriers: map[netip.Addr]map[string]bool{}, carried: map[string][]netip.Addr{}, touched: map[netip.Addr]bool{}}
}

// forget takes key out of the index.
func (x *addrIndex) forget(key string) {
	for _, a := range x.held[key] {
		delete(x.holders[a], key)
		x.touched[a] = true
	}
	delete(x.held, key)
	for _, a := range x.carried[key] {
		delete(x.carriers[a], key)
	}
	delete(x.carried, key)
}

// carry notes that key is served on as.
func (x *addrIndex) carry(key string, as []netip.Addr) {
	for _, a := range as {
		if x.carriers[a] == nil {
			x.carriers[a] = map[string]bool{}
		}
		x.carriers[a][key] = true
	}
	x.carried[key] = as
}

// hold notes that key holds as (DHCP's unspecified address holds none).
func (x *addrIndex) hold(key string, as []netip.Addr) {
	for _, a := range as {
		if a.IsUnspecified() {
			continue
		}
		if x.holders[a] == nil {
			x.holders[a] = map[string]bool{}
		}
		x.holders[a][key] = true
		x.touched[a] = true
	}
	x.held[key] = as
}

// takeTouched returns the addresses touched since it was last called,
// sorted.
func (x *addrIndex) takeTouched() []netip.Addr {
	addrs := make([]netip.Addr, 0, len(x.touched))
	for a := range x.touched {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	x.touched = map[netip.Addr]bool{}
	return addrs
}

// reindex updates the index for key from the store: every LoadBalancer
// (or Service kube-vip serves) carries what it is served on; a managed one
// not reported as failed holds the addresses of its annotation.
func (s *simulator) reindex(key string) {
	s.index.forget(key)
	svc, ok := s.cluster.services[key]
	if !ok {
		return
	}
	if decide.IsLoadBalancer(svc) || svc.Labels[decide.LabelImplementation] == decide.ImplementationKubeVIP {
		s.index.carry(key, decide.InUse(svc))
	}
	if s.outcomes.failed[key] || !decide.Managed(svc, s.dopts) || svc.Annotations[decide.AnnotationLoadBalancerIPs] == "" {
		return
	}
	as, _, err := decide.Addresses(svc)
	if err != nil {
		return
	}
	s.index.hold(key, as)
}

// checkTouched checks the addresses whose holders changed in this step: no
// address is held by two Services unless their ports allow it.
func (s *simulator) checkTouched() error {
	for _, a := range s.index.takeTouched() {
		keys := sortedKeys(s.index.holders[a])
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

// asksOnly reports whether svc asks for a without carrying it: a is its
// spec.loadBalancerIP (or another tool's request), it has no annotation of
// ours, and no status shows a.
func asksOnly(svc *corev1.Service, a netip.Addr) bool {
	return svc.Annotations[decide.AnnotationLoadBalancerIPs] == "" && len(svc.Status.LoadBalancer.Ingress) == 0 &&
		slices.Contains(decide.InUse(svc), a)
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
// loses or changes the address it held. resent is set for a write of
// unknown outcome sent again: it may collide only with Services the
// controller itself wrote last.
func (s *simulator) checkWrite(r *replica, key string, before, after *corev1.Service, d decide.Decision, resent bool) error {
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
		for _, other := range sortedKeys(s.index.carriers[a]) {
			if other == key || (resent && !s.controllersDoing(other)) {
				continue
			}
			o := s.known(r, other)
			if o == nil || !slices.Contains(s.servedOn(o), a) {
				continue // it could not know, or no one serves o there
			}
			if !decide.IsLoadBalancer(o) {
				continue // no longer a LoadBalancer: not served
			}
			if old == "" && slices.Contains(had, a) && asksOnly(o, a) {
				// Both ask for a (spec.loadBalancerIP, say) and neither
				// carries it: the user's doing, each served on it already;
				// the controller grants it to one of them (the oldest
				// waiting), and the write serves this one on nothing new.
				continue
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
		reported := s.outcomes.failed[key] && hasReason(s.outcomes.events[key], decide.ReasonAllocationFailed)
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
	return s.checkClaims()
}

// checkClaims runs once the controller has settled: no address is claimed
// only for Services that do not exist (deleted while no controller ran,
// say). None of them can receive a write, so the claim blocks the address
// for nothing.
func (s *simulator) checkClaims() error {
	if s.opts.NoClaims {
		return nil
	}
	for _, c := range (claimStore{s}).List() {
		if !c.Ours() {
			continue
		}
		holders := append([]string{c.Owner}, c.Sharers...)
		if slices.ContainsFunc(holders, func(k string) bool { _, ok := s.cluster.services[k]; return ok }) {
			continue
		}
		return s.invariant(fmt.Sprintf("once quiet, address %s is claimed only for Services that do not exist", c.Addr), holders...)
	}
	return nil
}
