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

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// stale reports whether c, a claim of ours, may go. Whatever its age, it
// may when no Service it names exists any more: a live read finds none,
// or one that is not the Service it was made for (deleted and created
// again since: see madeFor) and does not carry the address. No write
// can be on its way to a Service that does not exist. Otherwise it may once
// older than the grace period (no write can still be on its way relying on
// it) when no Service it names, read from the API server, carries the
// address.
func (e *Engine) stale(ctx context.Context, c Claim) bool {
	if c.Owner == "" {
		return false
	}
	young := time.Since(c.Created) < e.grace
	if young && e.opts.Decide.Flaws.Has(mutant.OrphanClaimsWait) {
		return false
	}
	for _, u := range c.holders() {
		if svc, ok := e.cluster.Cached(u); young && ok && e.madeFor(svc, c) {
			return false // there: its write may be on its way
		}
		svc, err := e.cluster.Live(ctx, u)
		switch {
		case apierrors.IsNotFound(err):
			continue // gone: it can receive no write
		case err != nil:
			return false // unknown: kept, to be safe
		}
		e.Observe(svc) // fresher than the cache: what it is served on is in use now
		carries := slices.Contains(decide.InUse(svc), c.Addr)
		switch {
		case !e.madeFor(svc, c) && !carries:
			continue // another Service of the same name: not the claim's
		case young || carries:
			return false
		}
	}
	return true
}

// madeFor reports whether svc may be the Service the claim c was made
// for: every judgement of a claim's Service goes through it. When c
// records a UID for svc's name, svc is that Service only if it has that
// UID. Otherwise (a claim made by a version that recorded none, or a
// Service whose UID was not known when the claim was made) svc is not
// when it was created after c, to the second (creation times have a
// resolution of a second, so one created in the same second is given the
// benefit of the doubt).
func (e *Engine) madeFor(svc *corev1.Service, c Claim) bool {
	if uid, ok := c.UIDs[decide.Key(svc)]; ok && !e.opts.Decide.Flaws.Has(mutant.ClaimUIDsIgnored) {
		return string(svc.UID) == uid
	}
	return !svc.CreationTimestamp.Time.Truncate(time.Second).After(c.Created.Truncate(time.Second))
}

// freeOrphans deletes, at start, the claims of ours that name only
// Services the cache does not show and that are stale (see stale): their
// Services were deleted, or deleted and created again, while no controller
// ran. It returns the IDs of the claims it deleted (or found gone), which
// the cache may still show. mu is not held.
func (e *Engine) freeOrphans(ctx context.Context) map[string]bool {
	freed := map[string]bool{}
	for _, c := range e.claims.List() {
		if !c.Ours() {
			continue
		}
		if slices.ContainsFunc(c.holders(), func(u string) bool {
			svc, ok := e.cluster.Cached(u)
			return ok && e.madeFor(svc, c)
		}) {
			continue // the repair judges it, knowing the ledger
		}
		if !e.stale(ctx, c) {
			continue
		}
		if err := e.claims.Delete(ctx, c); err != nil && !goneOrReplaced(err) {
			klog.FromContext(ctx).Error(err, "Start: deleting the claim of a deleted Service; the repair will", "address", c.Addr, "claimedFor", c.Owner)
			continue
		}
		klog.FromContext(ctx).Info("Start: freed the address claim of a Service deleted meanwhile", "address", c.Addr, "claimedFor", strings.Join(c.holders(), ","))
		freed[c.ID] = true
	}
	return freed
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
		claimedBy[claimant(c)] = true
	}
	var gone []string
	// carried adds the Services served on an address they do not hold
	// (contested, or in Also): a Service carrying an address another
	// manager claims loses it to that very claim, and is the one to tell.
	carried := map[netip.Addr][]string{}
	e.mu.Lock()
	usage := e.ledger.Usage()
	for _, o := range usage.Owners() {
		if e.claimants[o] {
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
		e.releaseClaimant(o)
	}
	if len(gone) > 0 {
		e.freeLocked()
	}
	e.mu.Unlock()
	if len(gone) > 0 {
		e.free(ctx, "", nil)
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
						e.emit(ctx, svc, o, []decide.Event{{Type: decide.EventWarning, Reason: decide.ReasonAddressClaimConflict, Message: fmt.Sprintf(
							"address %s is also claimed by %s (IPAddress managed by %s); delete that IPAddress if the address is this Service's, or move the Service to another address",
							c.Addr, claimant(c), c.Manager)}})
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
			if ok, err := e.replace(ctx, c, owners, nil); !ok {
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
		if _, err := e.create(ctx, a, held[a], nil, nil); err != nil {
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
