package allocator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Allocate answers req against the addresses in use, without changing
// anything: the caller records the answer with Assign once it has been
// written. The answer is deterministic: the same Config, Usage and Request
// always give the same Result.
//
// Automatic allocation, per family in the order of req.Families: when the
// namespace may share, the lowest address of the pool already held only by
// compatible Services; otherwise the lowest free address (the highest with
// search-order desc). IPv4 addresses ending in .0 or .255, and IPv6
// addresses whose low 64 bits are zero (the Subnet-Router anycast address of
// each /64, :: among them), are never handed out automatically.
//
// Requested addresses are validated instead: one held by an incompatible
// Service is a conflict; one outside the namespace's pool is allowed and
// listed in Result.Outside; a Subnet-Router anycast address is allowed and
// listed in Result.Anycast.
func (u *Usage) Allocate(cfg *Config, req Request) (Result, error) {
	if len(req.Requested) > 0 {
		return u.validateRequested(cfg, req)
	}
	pool := cfg.PoolFor(req.Namespace)
	if pool == nil {
		return Result{}, &Error{Reason: ReasonNoPool, Pool: req.Namespace, Detail: cfg.missing}
	}
	if pool.invalid != "" {
		return Result{}, &Error{Reason: ReasonNoPool, Pool: pool.name, Detail: pool.invalid}
	}
	fams, err := wantedFamilies(pool, req)
	if err != nil {
		return Result{}, err
	}
	if pool.dhcp {
		return dhcp(pool, fams, req.Policy)
	}
	res := Result{Pool: pool.name}
	var firstErr *Error
	for _, f := range fams {
		a, shared, err := u.pick(cfg, pool, f, req)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			res.Unavailable = append(res.Unavailable, err)
			continue
		}
		res.Addrs = append(res.Addrs, a)
		if shared {
			res.Shared = append(res.Shared, a)
		}
	}
	if len(res.Addrs) == 0 || (req.Policy == RequireDualStack && len(res.Addrs) < len(fams)) {
		return Result{}, firstErr
	}
	return res, nil
}

// dhcp answers a request from a DHCP pool: the marker 0.0.0.0, with which
// kube-vip asks a DHCP server for the address, is IPv4 only. An IPv6 or a
// RequireDualStack request cannot be served; PreferDualStack settles for it.
func dhcp(pool *Pool, fams []Family, policy FamilyPolicy) (Result, error) {
	v6 := &Error{Reason: ReasonFamilyUnavailable, Pool: pool.name, Family: IPv6}
	if !slices.Contains(fams, IPv4) || (policy == RequireDualStack && slices.Contains(fams, IPv6)) {
		return Result{}, v6
	}
	res := Result{Addrs: []netip.Addr{netip.IPv4Unspecified()}, Pool: pool.name}
	if slices.Contains(fams, IPv6) {
		res.Unavailable = []*Error{v6}
	}
	return res, nil
}

// wantedFamilies returns the families to allocate, in order.
func wantedFamilies(pool *Pool, req Request) ([]Family, error) {
	fams := slices.Clone(req.Families)
	for i, f := range fams {
		if f != IPv4 && f != IPv6 {
			return nil, &Error{Reason: ReasonInvalidRequest, Detail: fmt.Sprintf("unknown IP family %v", f)}
		}
		if slices.Contains(fams[:i], f) {
			return nil, &Error{Reason: ReasonInvalidRequest, Detail: fmt.Sprintf("IP family %v listed twice", f)}
		}
	}
	if len(fams) == 0 {
		fams = []Family{IPv4}
		if !pool.Has(IPv4) && pool.Has(IPv6) {
			fams[0] = IPv6
		}
	}
	switch req.Policy {
	case "", SingleStack:
		fams = fams[:1]
	case PreferDualStack, RequireDualStack:
		// As the existing provider: both families whenever the pool has
		// them, ipFamilies giving only the order (on a single-stack
		// cluster the API server lists one family even for these).
		if len(fams) == 1 {
			other := IPv6
			if fams[0] == IPv6 {
				other = IPv4
			}
			fams = append(fams, other)
		}
	default:
		return nil, &Error{Reason: ReasonInvalidRequest, Detail: fmt.Sprintf("unknown ipFamilyPolicy %q", req.Policy)}
	}
	return fams, nil
}

// pick chooses one address of family f from pool for req.
func (u *Usage) pick(cfg *Config, pool *Pool, f Family, req Request) (netip.Addr, bool, *Error) {
	if !pool.Has(f) {
		return netip.Addr{}, false, &Error{Reason: ReasonFamilyUnavailable, Pool: pool.name, Family: f}
	}
	if len(req.Ports) > 0 && cfg.AllowShare(req.Namespace) {
		if a, ok := u.shareCandidate(cfg, pool, f, req); ok {
			// Shared only if someone else holds it: the candidate may be
			// an address req.Owner itself already holds.
			return a, !u.heldOnlyBy(a, req.Owner), nil
		}
	}
	i := f.index()
	var k key
	var ok bool
	if cfg.desc {
		k, ok = u.lastFree(pool, i)
	} else {
		k, ok = u.firstFree(pool, i)
	}
	if !ok {
		return netip.Addr{}, false, &Error{Reason: ReasonExhausted, Pool: pool.name, Family: f}
	}
	return addrOf(f, k), false, nil
}

// shareCandidate returns the lowest address of family f in pool that req may
// share. It walks the shareable addresses of the pool's range: O(k) in their
// number, which sharing keeps small.
func (u *Usage) shareCandidate(cfg *Config, pool *Pool, f Family, req Request) (netip.Addr, bool) {
	rs := pool.set.Ranges()
	var found netip.Addr
	for _, r := range rs {
		if (r.From().Is4()) != (f == IPv4) {
			continue
		}
		// Not AscendRange(From, To.Next()): the range may end at the
		// family's last address, whose Next is the invalid Addr.
		u.shareable.AscendGreaterOrEqual(r.From(), func(a netip.Addr) bool {
			if r.To().Less(a) {
				return false
			}
			if !allocatable(a) || !u.compatible(cfg, a, req, true) {
				return true
			}
			found = a
			return false
		})
		if found.IsValid() {
			return found, true
		}
	}
	return netip.Addr{}, false
}

// compatible reports whether req may hold a alongside its current holders.
// Automatic sharing also needs every holder's namespace to allow sharing
// and to draw from req's pool; an explicit request needs only ports that
// do not collide.
func (u *Usage) compatible(cfg *Config, a netip.Addr, req Request, auto bool) bool {
	return u.conflictWith(cfg, a, req, auto) == nil
}

// conflictWith returns the first holder of a that req may not share with.
// Automatic sharing also needs every holder to draw from the same pool as
// req: an address in both a namespace's pool and the global pool is not
// shared between a Service of that namespace and one of another.
func (u *Usage) conflictWith(cfg *Config, a netip.Addr, req Request, auto bool) *Holding {
	var pool *Pool
	if auto {
		pool = cfg.PoolFor(req.Namespace)
	}
	for _, h := range u.byAddr[a] {
		if h.Owner == req.Owner {
			continue
		}
		if h.Releasing {
			if auto || !req.Granted {
				return h // never hand out an address on its way out
			}
			continue // a Service it was given to keeps it
		}
		if h.Contested && req.Carries && !auto {
			continue // it came later: the Service that carried it first keeps it
		}
		if h.Contested && h.OnlyAsks && !h.Exclusive && !auto {
			continue // it only asks too: which of the askers is granted it is the caller's to say
		}
		if h.Exclusive {
			return h // never shared: not ours, or only served on it
		}
		if len(h.Ports) == 0 || len(req.Ports) == 0 || portsCollide(h.Ports, req.Ports) {
			return h
		}
		if auto && (!cfg.AllowShare(h.Namespace) || cfg.PoolFor(h.Namespace) != pool) {
			return h
		}
	}
	return nil
}

// portsCollide reports whether a and b have a port/protocol pair in common.
func portsCollide(a, b []Port) bool {
	for _, p := range a {
		if slices.Contains(b, p) {
			return true
		}
	}
	return false
}

// validateRequested checks the addresses a user asked for.
func (u *Usage) validateRequested(cfg *Config, req Request) (Result, error) {
	pool := cfg.PoolFor(req.Namespace)
	var res Result
	if pool != nil {
		res.Pool = pool.name
	}
	// The shape first: a malformed request is reported as such, whatever
	// else its addresses meet.
	var fams []Family
	for _, a := range req.Requested {
		if !a.IsValid() {
			return Result{}, &Error{Reason: ReasonInvalidRequest, Detail: "invalid address"}
		}
		f := familyOf(a.Unmap())
		if slices.Contains(fams, f) {
			return Result{}, &Error{Reason: ReasonInvalidRequest, Addr: a.Unmap(), Detail: fmt.Sprintf("more than one %v address requested", f)}
		}
		fams = append(fams, f)
	}
	if err := familyMismatch(req); err != nil {
		return Result{}, err
	}
	var seen []Family
	for _, a := range req.Requested {
		if !a.IsValid() {
			return Result{}, &Error{Reason: ReasonInvalidRequest, Detail: "invalid address"}
		}
		if a.Zone() != "" {
			return Result{}, &Error{Reason: ReasonInvalidRequest, Addr: a, Detail: fmt.Sprintf("address %s has a zone", a)}
		}
		a = a.Unmap()
		f := familyOf(a)
		if slices.Contains(seen, f) {
			return Result{}, &Error{Reason: ReasonInvalidRequest, Addr: a, Detail: fmt.Sprintf("more than one %v address requested", f)}
		}
		seen = append(seen, f)
		res.Addrs = append(res.Addrs, a)
		if a.IsUnspecified() {
			continue // DHCP: kube-vip asks a DHCP server; nothing to hold
		}
		if h := u.conflictWith(cfg, a, req, false); h != nil {
			return Result{}, &Error{Reason: ReasonConflict, Addr: a, Holder: h.Owner, Detail: conflictDetail(h, req)}
		}
		if !u.heldOnlyBy(a, req.Owner) {
			res.Shared = append(res.Shared, a)
		}
		if pool == nil || !pool.Contains(a) {
			res.Outside = append(res.Outside, a)
		}
		if SubnetRouterAnycast(a) {
			res.Anycast = append(res.Anycast, a)
		}
	}
	return res, nil
}

// familyMismatch refuses, as the API server's own families would, a
// request of a single-stack Service for an address of the family it does
// not have: an IPv4 SingleStack Service asking for an IPv6 address, or the
// reverse. A dual-stack Service may ask for one of each family; one whose
// ipFamilies are unknown (none listed) is not judged; neither is the DHCP
// marker 0.0.0.0, nor what was granted already (a Service turned from
// dual-stack to single-stack keeps the address of its family, and the
// controller drops the other).
func familyMismatch(req Request) *Error {
	if (req.Policy != "" && req.Policy != SingleStack) || len(req.Families) == 0 || req.Granted {
		return nil
	}
	want := req.Families[0]
	for _, a := range req.Requested {
		a = a.Unmap()
		if a.IsUnspecified() || familyOf(a) == want {
			continue
		}
		policy := req.Policy
		if policy == "" {
			policy = SingleStack
		}
		fams := make([]string, len(req.Families))
		for i, f := range req.Families {
			fams[i] = f.String()
		}
		return &Error{Reason: ReasonInvalidRequest, Addr: a, Family: familyOf(a), Detail: fmt.Sprintf(
			"address %s is %v, but Service %s is %s with ipFamilies [%s]: ask for an %v address, or make the Service dual-stack (ipFamilyPolicy PreferDualStack or RequireDualStack)",
			a, familyOf(a), req.Owner, policy, strings.Join(fams, ", "), want)}
	}
	return nil
}

// heldOnlyBy reports whether no Service but owner (and Services that are
// releasing or contesting it) holds a.
func (u *Usage) heldOnlyBy(a netip.Addr, owner string) bool {
	for _, h := range u.byAddr[a] {
		if h.Owner != owner && !h.Releasing && !h.Contested {
			return false
		}
	}
	return true
}

func conflictDetail(h *Holding, req Request) string {
	switch {
	case h.Releasing:
		return "the holder is releasing it; retrying once it has"
	case h.Exclusive:
		return "the holder shares with no one (not managed by this provider, a malformed request, or an address claimed in the API server)"
	case len(h.Ports) == 0:
		return "the holder has no ports, so it cannot share"
	case len(req.Ports) == 0:
		return "a Service without ports cannot share"
	}
	for _, p := range h.Ports {
		if slices.Contains(req.Ports, p) {
			return fmt.Sprintf("both use port %s", p)
		}
	}
	return "sharing is not allowed"
}
