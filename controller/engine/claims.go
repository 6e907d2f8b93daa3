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
)

// Claim is the API server's record that one address is taken: an IPAddress
// object named by the address, whose parent is a Service.
type Claim struct {
	Addr netip.Addr
	// Owner is the parent Service's "namespace/name"; empty when the
	// parent is not a Service.
	Owner string
	// Manager is the claim's managed-by label.
	Manager string
	// ID is the object's identity (its UID): Delete removes only that one.
	ID string
	// Created is when the claim was made.
	Created time.Time
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
	// Create claims addr for the Service named owner.
	Create(ctx context.Context, addr netip.Addr, owner string) (Claim, error)
	// Delete removes the claim c, only if it is still c (its owner).
	Delete(ctx context.Context, c Claim) error
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
	_, held := e.ledger.Usage().Holding(foreignOwner(c))
	e.ledger.Usage().Release(foreignOwner(c))
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

// claim makes sure every address the write of d gives is claimed for the
// Service named key, or held under a claim of a Service it shares with.
// It returns the addresses it claimed now, the claim of an address someone
// else holds (taken), or an error that leaves the outcome unknown.
func (e *Engine) claim(ctx context.Context, key string, d decide.Decision) ([]netip.Addr, *Claim, error) {
	var created []netip.Addr
	for _, a := range d.Holding.Addrs {
		if a.IsUnspecified() {
			continue
		}
		c, ok := e.claims.Get(a)
		if !ok || (c.Manager == ManagedBy && !e.mayUse(c, key) && e.stale(ctx, c)) {
			if ok {
				// A stale claim of ours (its Service has not carried the
				// address for the grace period): what the repair would
				// delete, taken over now rather than reported as a Conflict.
				if err := e.claims.Delete(ctx, c); err != nil && !apierrors.IsNotFound(err) {
					return created, nil, fmt.Errorf("claim %s for Service %s: delete the stale claim for %s: %w", a, key, c.Owner, err)
				}
			}
			var err error
			c, err = e.claims.Create(ctx, a, key)
			switch {
			case err == nil:
				created = append(created, a)
				continue
			case !apierrors.IsAlreadyExists(err):
				return created, nil, fmt.Errorf("claim %s for Service %s: %w", a, key, err)
			}
		}
		if !e.mayUse(c, key) {
			return created, &c, nil
		}
	}
	return created, nil, nil
}

// stale reports whether c, a claim of ours, may go: older than the grace
// period (no write can still be on its way relying on it) and its Service,
// read from the API server, no longer carries the address.
func (e *Engine) stale(ctx context.Context, c Claim) bool {
	return c.Owner != "" && time.Since(c.Created) >= e.grace && !e.carriesLive(ctx, c)
}

// unclaim deletes the claims a write of the Service named key made, when
// that write did not go out or was refused: unless the Service, read from
// the API server, carries the address after all (another controller's
// write of the same decision may have landed on the claim).
func (e *Engine) unclaim(ctx context.Context, key string, addrs []netip.Addr) {
	if len(addrs) == 0 {
		return
	}
	var carried []netip.Addr
	if live, err := e.cluster.Live(ctx, key); err == nil {
		carried = decide.InUse(live)
	} else if !apierrors.IsNotFound(err) {
		return // unknown: the repair judges them later
	}
	for _, a := range addrs {
		c, ok := e.claims.Get(a)
		if slices.Contains(carried, a) || (ok && (c.Owner != key || c.Manager != ManagedBy)) {
			continue
		}
		if !ok {
			c = Claim{Addr: a, Owner: key, Manager: ManagedBy}
		}
		if err := e.claims.Delete(ctx, c); err != nil && !apierrors.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "Dropping the claim of a write that did not land; the repair will", "service", key, "address", a)
		}
	}
}

// mayUse reports whether the Service named key may hold c's address: the
// claim is its own, or that of a Service of ours it shares the address with.
func (e *Engine) mayUse(c Claim, key string) bool {
	if c.Manager != ManagedBy || c.Owner == "" {
		return false
	}
	if c.Owner == key {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holdsValidly(c.Owner, c.Addr)
}

// taken undoes the write of d, whose address c holds for someone else: the
// address is in use from now on, and the Service is decided again at once.
func (e *Engine) taken(ctx context.Context, key string, d decide.Decision, c Claim) {
	klog.FromContext(ctx).Info("Address claimed by another; deciding again", "service", key, "address", c.Addr,
		"claimedFor", c.Owner, "managedBy", c.Manager)
	e.mu.Lock()
	e.ledger.WriteFailed(d)
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
	logger := klog.FromContext(ctx).WithValues("service", key)
	for _, a := range addrs {
		c, ok := e.claims.Get(a)
		if !ok || c.Manager != ManagedBy || c.Owner != key {
			continue
		}
		if err := e.claims.Delete(ctx, c); err != nil && !apierrors.IsNotFound(err) {
			logger.Error(err, "Releasing an address claim; the repair will", "address", a)
			continue
		}
		if next := e.nextHolder(a, key); next != "" {
			if _, err := e.claims.Create(ctx, a, next); err != nil {
				logger.Error(err, "Moving an address claim to the next holder; the repair will", "address", a, "to", next)
			}
		}
	}
}

// nextHolder returns the first Service other than key that holds a as its
// own, or "".
func (e *Engine) nextHolder(a netip.Addr, key string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range e.ledger.Usage().Holders(a) {
		if o != key && !isForeign(o) && e.holdsValidly(o, a) {
			return o
		}
	}
	return ""
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
			// controller's relying on it), or the cache lags: kept.
		default:
			if err := e.claims.Delete(ctx, c); err != nil && !apierrors.IsNotFound(err) {
				logger.Error(err, "Repair: deleting a stale address claim", "address", c.Addr, "claimedFor", c.Owner)
				continue
			}
			if len(owners) == 0 {
				r.Deleted++
				continue
			}
			if _, err := e.claims.Create(ctx, c.Addr, owners[0]); err != nil {
				logger.Error(err, "Repair: moving an address claim", "address", c.Addr, "to", owners[0])
				continue
			}
			r.Moved++
		}
	}
	for _, a := range sortedAddrs(held) {
		if claimed[a] {
			continue
		}
		if _, err := e.claims.Create(ctx, a, held[a][0]); err != nil {
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

// carriesLive reports whether the claim's Service, read from the API
// server, carries its address (or could not be read: kept, to be safe).
func (e *Engine) carriesLive(ctx context.Context, c Claim) bool {
	if c.Owner == "" {
		return false
	}
	svc, err := e.cluster.Live(ctx, c.Owner)
	if apierrors.IsNotFound(err) {
		return false
	}
	return err != nil || slices.Contains(decide.InUse(svc), c.Addr)
}

func sortedAddrs(m map[netip.Addr][]string) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
