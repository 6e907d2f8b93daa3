package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// The managers of address claims (the label ipaddress.kubernetes.io/managed-by
// of networking.k8s.io/v1 IPAddress objects).
const (
	// ManagedBy marks the claims of this provider.
	ManagedBy = "kube-vip-cloud-provider.kube-vip.io"
	// ClusterIPManager marks the claims of the API server's ClusterIP
	// allocator.
	ClusterIPManager = "ipallocator.k8s.io"
	// SharersAnnotation, on a claim of ours, lists the Services that share
	// its address with the parent ("namespace/name", comma-separated).
	SharersAnnotation = "kube-vip-cloud-provider.kube-vip.io/sharers"
)

// Claim is the API server's record that one address is taken: an IPAddress
// object named by the address, whose parent is a Service.
type Claim struct {
	Addr netip.Addr
	// Owner is the parent Service's "namespace/name"; empty when the
	// parent is not a Service.
	Owner string
	// Sharers are the Services recorded as sharing the address with
	// Owner. A claim is never changed in place: a new sharer deletes it
	// and creates it again, so that two controllers admitting sharers at
	// once cannot both succeed.
	Sharers []string
	// Manager is the claim's managed-by label.
	Manager string
	// ID is the object's identity (its UID): Delete removes only that one.
	ID string
	// Created is when the claim was made.
	Created time.Time
}

// holders returns the Services the claim names: its owner, then its
// sharers.
func (c Claim) holders() []string {
	if c.Owner == "" {
		return nil
	}
	return append([]string{c.Owner}, c.Sharers...)
}

// names reports whether the claim, one of ours, names the Service key.
func (c Claim) names(key string) bool {
	return c.Manager == ManagedBy && slices.Contains(c.holders(), key)
}

// Claims are the address claims: uniqueness enforced by the API server,
// beyond what one process's memory can promise. Create must fail with
// AlreadyExists, returning the claim that exists, when another object
// holds the address.
type Claims interface {
	// Get returns the claim of addr as the cache shows it.
	Get(addr netip.Addr) (Claim, bool)
	// List returns every claim the cache shows.
	List() []Claim
	// Create claims addr for the Service named owner, recording sharers
	// as the Services that share it.
	Create(ctx context.Context, addr netip.Addr, owner string, sharers []string) (Claim, error)
	// Delete removes the claim c, only if it is still c (its ID): a
	// Conflict when another claim of the address has replaced it,
	// NotFound when there is none.
	Delete(ctx context.Context, c Claim) error
}

// goneOrReplaced reports whether a Delete failed because the claim was no longer
// there: deleted, or replaced by another.
func goneOrReplaced(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}

// create makes a claim and remembers it as this engine's own.
func (e *Engine) create(ctx context.Context, a netip.Addr, owner string, sharers []string) (Claim, error) {
	c, err := e.claims.Create(ctx, a, owner, sharers)
	if err == nil && c.ID != "" {
		e.mu.Lock()
		e.made[c.ID] = true
		e.mu.Unlock()
	}
	return c, err
}

// foreignOwner is the ledger owner of an address claimed by someone the
// ledger does not know as its holder.
func foreignOwner(c Claim) string {
	switch {
	case c.Manager == ClusterIPManager:
		return fmt.Sprintf("the ClusterIP %s (the pool overlaps the service CIDR)", c.Addr)
	case c.Owner != "":
		return fmt.Sprintf("IPAddress %s (claimed for %s by %s)", c.Addr, c.Owner, c.Manager)
	}
	return fmt.Sprintf("IPAddress %s (managed by %s)", c.Addr, c.Manager)
}

// isForeign reports whether a ledger owner stands for a claim.
func isForeign(owner string) bool {
	return !strings.Contains(owner, "/") || strings.Contains(owner, " ")
}

// ClaimSeen tells the engine that the cache shows c. An address claimed by
// anyone but one of this provider's Services is in use: never handed out.
func (e *Engine) ClaimSeen(c Claim) {
	if c.Manager == ManagedBy && c.Owner != "" {
		return // one of ours: the ledger knows it from the Service
	}
	e.mu.Lock()
	e.ledger.Usage().Assign(allocator.Holding{Owner: foreignOwner(c), Addrs: []netip.Addr{c.Addr}, Exclusive: true})
	e.mu.Unlock()
}

// ClaimGone tells the engine that the claim c is gone: if it held the
// address for someone else, the address is free, and the Services waiting
// for one are woken.
func (e *Engine) ClaimGone(c Claim) {
	e.mu.Lock()
	delete(e.made, c.ID)
	_, held := e.ledger.Usage().Holding(foreignOwner(c))
	e.ledger.Usage().Release(foreignOwner(c))
	if held {
		e.newGeneration() // freed now: the waiting owe a turn from here
	}
	e.mu.Unlock()
	if held {
		e.wakeWaiting()
	}
}

// registerClaims reserves, at start, every address claimed by anyone but
// a Service of ours. A claim of ours on an address one of our Services
// holds is left to the repair (it moves the claim to the holder): reserved
// for a claimant, it would report the holder's own address as a Conflict.
// mu is held.
func (e *Engine) registerClaims() {
	for _, c := range e.claims.List() {
		if c.Manager == ManagedBy && c.Owner != "" && e.heldByOurs(c.Addr) {
			continue
		}
		e.ledger.Usage().Assign(allocator.Holding{Owner: foreignOwner(c), Addrs: []netip.Addr{c.Addr}, Exclusive: true})
	}
}

// heldByOurs reports whether a Service of ours holds a as its own; mu is
// held.
func (e *Engine) heldByOurs(a netip.Addr) bool {
	for _, o := range e.ledger.Usage().Holders(a) {
		if !isForeign(o) && e.holdsValidly(o, a) {
			return true
		}
	}
	return false
}

// holdsValidly reports whether owner holds a as its own in the ledger
// (not contested, not only served on it); mu is held.
func (e *Engine) holdsValidly(owner string, a netip.Addr) bool {
	h, ok := e.ledger.Usage().Holding(owner)
	return ok && !h.Contested && !h.Releasing && slices.Contains(h.Addrs, a)
}

// otherHolders returns the Services other than key that hold a as their
// own in the ledger; mu is not held.
func (e *Engine) otherHolders(a netip.Addr, key string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, o := range e.ledger.Usage().Holders(a) {
		if o != key && !isForeign(o) && e.holdsValidly(o, a) {
			out = append(out, o)
		}
	}
	return out
}

// asks reports whether the Service key, as the cache shows it, asks for a
// itself (annotation, spec.loadBalancerIP).
func (e *Engine) asks(key string, a netip.Addr) bool {
	svc, ok := e.cluster.Cached(key)
	if !ok {
		return false
	}
	as, _, _ := decide.Addresses(svc)
	return slices.Contains(as, a)
}

// servedOn reports whether the ledger has the Service key holding or
// served on a; mu is held.
func (e *Engine) servedOn(key string, a netip.Addr) bool {
	h, ok := e.ledger.Usage().Holding(key)
	return ok && (slices.Contains(h.Addrs, a) || slices.Contains(h.Also, a))
}

// promote makes the Service key a holder of a in the ledger, as an
// address claim says it is: a moves from what it is only served on to
// what it holds, and its holding is no longer contested. It reports false
// when the ledger has key neither holding nor served on a, or has it
// holding exclusively or releasing (never a sharer). mu is held.
func (e *Engine) promote(key string, a netip.Addr) bool {
	h, _ := e.ledger.Usage().Holding(key)
	if !e.servedOn(key, a) || h.Exclusive || h.Releasing {
		return false
	}
	if !slices.Contains(h.Addrs, a) {
		h.Also = slices.DeleteFunc(slices.Clone(h.Also), func(b netip.Addr) bool { return b == a })
		h.Addrs = append(slices.Clone(h.Addrs), a)
	}
	h.Contested = false
	e.ledger.Usage().Assign(h)
	return true
}

// claim makes sure every address the write of d gives is claimed for the
// Service named key, or names it among the sharers of a claim of a Service
// it shares with. It returns the addresses whose claim it made or joined
// now, the claim of an address someone else holds (taken), again when the
// claim told something the decision did not know (or changed under it) and
// the Service must be decided again, or an error that leaves the outcome
// unknown.
func (e *Engine) claim(ctx context.Context, key string, d decide.Decision) (claimed []netip.Addr, taken *Claim, again bool, err error) {
	for _, a := range d.Holding.Addrs {
		if a.IsUnspecified() {
			continue
		}
		c, ok := e.claims.Get(a)
		// The Services of ours the ledger has holding a besides key:
		// looked up once, and only when the claim does not name key
		// already (the common case of a write needs nothing more).
		var others []string
		if !ok || !c.names(key) {
			others = e.otherHolders(a, key)
		}
		if ok && c.Manager == ManagedBy && !c.names(key) && len(others) == 0 && e.stale(ctx, c) {
			// A stale claim of ours (none it names has carried the
			// address for the grace period): what the repair would
			// delete, taken over now rather than reported as a Conflict.
			if err := e.claims.Delete(ctx, c); err != nil && !goneOrReplaced(err) {
				return claimed, nil, false, fmt.Errorf("claim %s for Service %s: delete the stale claim for %s: %w", a, key, c.Owner, err)
			}
			ok = false
		}
		if !ok {
			// The Services it shares with (none: it is the owner), as the
			// ledger knows them; this claim records them.
			owner, sharers := key, []string(nil)
			if len(others) > 0 {
				owner, sharers = others[0], append(slices.Clone(others[1:]), key)
			}
			c, err = e.create(ctx, a, owner, sharers)
			switch {
			case err == nil:
				claimed = append(claimed, a)
				continue
			case !apierrors.IsAlreadyExists(err):
				return claimed, nil, false, fmt.Errorf("claim %s for Service %s: %w", a, key, err)
			}
		}
		switch {
		case c.names(key):
		case c.Manager == ManagedBy && c.Owner != "" && len(others) > 0 && e.opts.Decide.Flaws.UnrecordedSharers:
		case c.Manager == ManagedBy && c.Owner != "" && len(others) > 0:
			// The ledger shares a with a Service of ours: the claim must
			// record key, and may name sharers the ledger does not know.
			joined, err := e.join(ctx, c, key, others, e.asks(key, a))
			if err != nil {
				return claimed, nil, false, err
			}
			if !joined {
				return claimed, nil, true, nil
			}
			claimed = append(claimed, a)
		default:
			return claimed, &c, false, nil
		}
	}
	return claimed, nil, false, nil
}

// join adds the Service key to the sharers of c, one of our claims
// (others: the Services the ledger has holding its address besides key,
// recorded too). Every
// Service c names that the ledger does not know on its address is read
// from the API server first: one that carries the address, or whose write
// may still be on its way (c is younger than the grace period), is
// recorded in the ledger as served on it, with its ports, and join
// returns false: key must be decided again knowing it (its ports may
// collide). Otherwise c is replaced by a claim that also names key,
// deleted by its ID and created again: when another controller changed
// the claim meanwhile, one of the two fails, and join returns false.
//
// When key asks for a itself (a user's request that collides with one the
// claim names), the claim arbitrates once per claim: should the ledger
// decide against it again (two controllers' views of which came first
// differ), key's own request stands rather than the two deciding for ever.
func (e *Engine) join(ctx context.Context, c Claim, key string, others []string, asked bool) (bool, error) {
	a := c.Addr
	e.mu.Lock()
	arbitrated := asked && e.arbitrated[key] == c.ID
	e.mu.Unlock()
	var keep []string
	learned := false
	for _, u := range c.holders() {
		if u == key || slices.Contains(keep, u) {
			continue
		}
		e.mu.Lock()
		valid := e.holdsValidly(u, a)
		e.mu.Unlock()
		if valid {
			keep = append(keep, u)
			continue
		}
		live, err := e.cluster.Live(ctx, u)
		switch {
		case apierrors.IsNotFound(err):
			continue // gone: off the record
		case err != nil:
			return false, fmt.Errorf("claim %s for Service %s: read %s, which the claim names: %w", a, key, u, err)
		}
		live = live.DeepCopy()
		inFlight := !slices.Contains(decide.InUse(live), a)
		if inFlight {
			if time.Since(c.Created) >= e.grace {
				continue // it never took the address: off the record
			}
			// Admitted by another controller, its write on its way: it
			// is served on a from now on.
			live.Status.LoadBalancer.Ingress = append(live.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: a.String()})
		}
		// The claim names it: it holds a, with its ports, whatever the
		// ledger made of it (unknown, or the loser of a contest that the
		// controller which claimed for it decided the other way) when it
		// asks for a (annotation, spec) or its write is on its way. One
		// only served on a (its status) has moved on, or is moving: it is
		// served on a, no more. The ledger does not take it when it is no
		// LoadBalancer (it is being released), or when it has a newer
		// version of it (which the write on its way would conflict with):
		// off the record.
		asks, _, _ := decide.Addresses(live)
		e.mu.Lock()
		before := e.servedOn(u, a)
		e.ledger.Observe(live, e.opts.Decide)
		promoted := !arbitrated && (inFlight || slices.Contains(asks, a)) && e.promote(u, a)
		if promoted && asked {
			e.arbitrated[key] = c.ID
		}
		learned = promoted || (!before && e.servedOn(u, a)) || learned
		e.mu.Unlock()
	}
	if learned {
		return false, nil
	}
	// Nothing learned: the ledger is as when others was looked up.
	for _, o := range others {
		if !slices.Contains(keep, o) {
			keep = append(keep, o)
		}
	}
	return e.replace(ctx, c, append(keep, key))
}

// replace puts a claim naming holders (the first its owner) in the place
// of c: c is deleted by its ID, then the new one created. It returns false
// when another claim of the address came first (c had been replaced, or
// was recreated meanwhile); an error when the new claim could not be made
// (the address is then unclaimed until the repair claims it again).
func (e *Engine) replace(ctx context.Context, c Claim, holders []string) (bool, error) {
	if err := e.claims.Delete(ctx, c); err != nil {
		if goneOrReplaced(err) {
			return false, nil
		}
		return false, fmt.Errorf("claim %s: replace the claim of %s: %w", c.Addr, strings.Join(c.holders(), ","), err)
	}
	if len(holders) == 0 {
		return true, nil
	}
	if _, err := e.create(ctx, c.Addr, holders[0], holders[1:]); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return false, fmt.Errorf("claim %s for %s: %w", c.Addr, strings.Join(holders, ","), err)
	}
	return true, nil
}

// stale reports whether c, a claim of ours, may go: older than the grace
// period (no write can still be on its way relying on it) and no Service
// it names, read from the API server, carries the address.
func (e *Engine) stale(ctx context.Context, c Claim) bool {
	if c.Owner == "" || time.Since(c.Created) < e.grace {
		return false
	}
	for _, u := range c.holders() {
		if e.carriesLive(ctx, u, c.Addr) {
			return false
		}
	}
	return true
}

// unclaim takes the Service named key off the claims a write of it made
// or joined, when that write did not go out or was refused: unless the
// Service, read from the API server, carries the address after all
// (another controller's write of the same decision may have landed on the
// claim).
func (e *Engine) unclaim(ctx context.Context, key string, addrs []netip.Addr) {
	if len(addrs) == 0 {
		return
	}
	var carried []netip.Addr
	if live, err := e.cluster.Live(ctx, key); err == nil {
		e.Observe(live)
		carried = decide.InUse(live)
	} else if !apierrors.IsNotFound(err) {
		return // unknown: the repair judges them later
	}
	for _, a := range addrs {
		if slices.Contains(carried, a) {
			continue
		}
		if err := e.leave(ctx, key, a); err != nil {
			klog.FromContext(ctx).Error(err, "Dropping the claim of a write that did not land; the repair will", "service", key, "address", a)
		}
	}
}

// leave takes the Service named key off the claim of a: the claim goes
// when key was all it named, moves to the next holder when key owned it
// (the Services the ledger has holding a, then the sharers it recorded),
// and is made again without key when key shared it.
func (e *Engine) leave(ctx context.Context, key string, a netip.Addr) error {
	c, ok := e.claims.Get(a)
	if !ok || !c.names(key) {
		return nil
	}
	e.mu.Lock()
	mine := e.made[c.ID]
	e.mu.Unlock()
	if !mine && time.Since(c.Created) < e.grace && e.carriesLive(ctx, key, a) {
		// Made by another controller (or before a restart) within the
		// grace period, and key carries a after all: that controller's
		// write landed, unseen here. The repair judges it once older.
		return nil
	}
	var rest []string
	for _, o := range slices.Concat(e.otherHolders(a, key), c.holders()) {
		if o != key && !slices.Contains(rest, o) {
			rest = append(rest, o)
		}
	}
	if _, err := e.replace(ctx, c, rest); err != nil {
		return fmt.Errorf("release %s for Service %s: %w", a, key, err)
	}
	return nil
}

// taken undoes the write of d, whose address c holds for someone else: the
// address is in use from now on, and the Service is decided again at once.
func (e *Engine) taken(ctx context.Context, key string, d decide.Decision, c Claim) {
	klog.FromContext(ctx).Info("Address claimed by another; deciding again", "service", key, "address", c.Addr,
		"claimedFor", c.Owner, "managedBy", c.Manager)
	e.mu.Lock()
	e.ledger.WriteFailed(d)
	e.waitAgain(key, d)
	e.ledger.Usage().Assign(allocator.Holding{Owner: foreignOwner(c), Addrs: []netip.Addr{c.Addr}, Exclusive: true})
	e.mu.Unlock()
	// The claim may have gone (and its ClaimGone passed) while it was
	// read: the reservation must not outlive it.
	if cur, ok := e.claims.Get(c.Addr); !ok || (c.ID != "" && cur.ID != c.ID) {
		e.ClaimGone(c)
	}
	e.wake(key)
}

// releaseClaims gives up the claims the Service named key held on addrs,
// once the write that frees them has landed (or it is gone). A shared
// address's claim moves to the next Service that holds it.
func (e *Engine) releaseClaims(ctx context.Context, key string, addrs []netip.Addr) {
	if e.claims == nil {
		return
	}
	for _, a := range addrs {
		if err := e.leave(ctx, key, a); err != nil {
			klog.FromContext(ctx).Error(err, "Releasing an address claim; the repair will", "service", key, "address", a)
		}
	}
}

// RepairReport says what one repair did.
type RepairReport struct {
	// Deleted counts claims of ours whose Service is gone or no longer
	// holds the address; Created, addresses held without a claim that got
	// one; Moved, claims moved to the Service that holds the address now.
	Deleted, Created, Moved int
	// Foreign lists the claims of other managers on addresses that one of
	// our Services holds.
	Foreign []Claim
}

// Repair brings the claims in line with the ledger: claims of ours whose
// Service no longer holds the address are deleted (or moved to the Service
// that holds it now) once older than the grace period (a write may still
// be on its way) and once a live read confirms it, held addresses without a claim get one, and claims
// of other managers on addresses our Services hold are reported, with a
// Warning Event AddressClaimConflict on the Service.
func (e *Engine) Repair(ctx context.Context) RepairReport {
	var r RepairReport
	if e.claims == nil {
		return r
	}
	logger := klog.FromContext(ctx)
	// The claims first, then the ledger: a claim listed was created for a
	// decision the ledger already records, so a write in flight never
	// loses its fresh claim here.
	claims := e.claims.List()
	held := map[netip.Addr][]string{}
	claimedBy := map[string]bool{}
	for _, c := range claims {
		claimedBy[foreignOwner(c)] = true
	}
	var gone []string
	// carried adds the Services served on an address they do not hold
	// (contested, or in Also): a Service carrying an address another
	// manager claims loses it to that very claim, and is the one to tell.
	carried := map[netip.Addr][]string{}
	e.mu.Lock()
	usage := e.ledger.Usage()
	for _, o := range usage.Owners() {
		if isForeign(o) {
			if !claimedBy[o] {
				gone = append(gone, o) // its claim went unnoticed
			}
			continue
		}
		h, _ := usage.Holding(o)
		for _, a := range slices.Concat(h.Addrs, h.Also) {
			if a.IsUnspecified() {
				continue
			}
			carried[a] = append(carried[a], o)
			if !h.Contested && slices.Contains(h.Addrs, a) {
				held[a] = append(held[a], o)
			}
		}
	}
	for _, o := range gone {
		usage.Release(o)
	}
	if len(gone) > 0 {
		e.newGeneration()
	}
	e.mu.Unlock()
	if len(gone) > 0 {
		e.wakeWaiting()
	}
	claimed := map[netip.Addr]bool{}
	for _, c := range claims {
		claimed[c.Addr] = true
		owners := held[c.Addr]
		switch {
		case c.Manager != ManagedBy:
			if len(carried[c.Addr]) > 0 {
				r.Foreign = append(r.Foreign, c)
				for _, o := range carried[c.Addr] {
					if svc, ok := e.cluster.Cached(o); ok {
						e.recorder.Event(svc, corev1.EventTypeWarning, decide.ReasonAddressClaimConflict, fmt.Sprintf(
							"address %s is also claimed by %s (IPAddress managed by %s)", c.Addr, foreignOwner(c), c.Manager))
					}
				}
			}
		case slices.Contains(owners, c.Owner):
		case !e.stale(ctx, c):
			// Young (a write may be on its way, maybe another
			// controller's relying on it), or a Service it names carries
			// the address though the cache does not show it yet: kept.
		case len(owners) == 0:
			if err := e.claims.Delete(ctx, c); err != nil && !goneOrReplaced(err) {
				logger.Error(err, "Repair: deleting a stale address claim", "address", c.Addr, "claimedFor", c.Owner)
				continue
			}
			r.Deleted++
		default:
			if ok, err := e.replace(ctx, c, owners); !ok {
				if err != nil {
					logger.Error(err, "Repair: moving an address claim", "address", c.Addr, "to", owners[0])
				}
				continue
			}
			r.Moved++
		}
	}
	for _, a := range sortedAddrs(held) {
		if claimed[a] {
			continue
		}
		if _, err := e.create(ctx, a, held[a][0], held[a][1:]); err != nil {
			if !apierrors.IsAlreadyExists(err) { // claimed meanwhile: the next repair judges it
				logger.Error(err, "Repair: claiming a held address", "address", a, "for", held[a][0])
			}
			continue
		}
		r.Created++
	}
	if r.Deleted+r.Created+r.Moved+len(r.Foreign) > 0 {
		logger.Info("Address claims repaired", "deleted", r.Deleted, "created", r.Created, "moved", r.Moved, "foreign", len(r.Foreign))
	}
	return r
}

// carriesLive reports whether the Service named key, read from the API
// server, carries a (or could not be read: kept, to be safe).
func (e *Engine) carriesLive(ctx context.Context, key string, a netip.Addr) bool {
	svc, err := e.cluster.Live(ctx, key)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		return true
	}
	e.Observe(svc) // fresher than the cache: what it is served on is in use now
	return slices.Contains(decide.InUse(svc), a)
}

func sortedAddrs(m map[netip.Addr][]string) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
