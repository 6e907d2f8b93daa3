package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

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
	others := e.otherHolders(a, key)
	var rest []string
	live := map[string]string{} // the UIDs of the Services read live
	for _, o := range slices.Concat(others, c.holders()) {
		if o == key || slices.Contains(rest, o) {
			continue
		}
		if !e.opts.Decide.Flaws.Has(mutant.VanishedSharersStay) {
			gone, uid := e.vanished(ctx, o, c, slices.Contains(others, o))
			if gone {
				// Deleted unseen (while no controller ran, before a
				// handover, or not yet in a lagging cache): it can
				// receive no write, so the claim must not pass to it.
				continue
			}
			if uid != "" {
				live[o] = uid
			}
		}
		rest = append(rest, o)
	}
	if _, err := e.replace(ctx, c, rest, live); err != nil {
		return fmt.Errorf("release %s for Service %s: %w", a, key, err)
	}
	return nil
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

// leaveDeleted takes the Service named key, gone from the cache, off the
// claims that still name it beyond those on the addresses released (the
// ledger's holding): a claim made for a write that never landed, say, or
// made by another controller or before a restart. A live read must find
// no such Service first (or one that is not the Service the claim was made
// for, not carrying its address: see madeFor); otherwise the repair judges
// them.
func (e *Engine) leaveDeleted(ctx context.Context, key string, released []netip.Addr) {
	if e.claims == nil || e.opts.Decide.Flaws.Has(mutant.OrphanClaimsWait) {
		return
	}
	var left []Claim
	for _, c := range e.claims.Naming(key) {
		if !slices.Contains(released, c.Addr) {
			left = append(left, c)
		}
	}
	if len(left) == 0 {
		return
	}
	live, err := e.cluster.Live(ctx, key)
	switch {
	case err == nil:
		e.Observe(live)
	case !apierrors.IsNotFound(err):
		return // unknown: the repair judges them later
	}
	for _, c := range left {
		if live != nil && (e.madeFor(live, c) || slices.Contains(decide.InUse(live), c.Addr)) {
			continue
		}
		if err := e.leave(ctx, key, c.Addr); err != nil {
			klog.FromContext(ctx).Error(err, "Releasing the claim of a deleted Service; the repair will", "service", key, "address", c.Addr)
		}
	}
}

// vanished reports whether the Service named u, which the claim c names,
// is gone for good, as a live read tells (the cache may lag, and may never
// show the delete to a controller that stops first): there is none, or,
// unless the ledger has it holding c's address (holds: its write may be on
// its way), one that is not the Service c was made for (see madeFor) and
// does not carry the address. One that could not be read has not
// vanished. uid is the UID of the Service read, when one was.
func (e *Engine) vanished(ctx context.Context, u string, c Claim, holds bool) (gone bool, uid string) {
	svc, err := e.cluster.Live(ctx, u)
	switch {
	case apierrors.IsNotFound(err):
		return true, ""
	case err != nil:
		return false, ""
	}
	e.Observe(svc) // fresher than the cache: what it is served on is in use now
	return !holds && !e.madeFor(svc, c) && !slices.Contains(decide.InUse(svc), c.Addr), string(svc.UID)
}
