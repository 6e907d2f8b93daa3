package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// Result tells an adapter what to do with a key after its sync, as
// MetalLB's SyncState does; the adapters follow it and nothing else.
type Result int

const (
	// Done: nothing is left to do until the Service (or the config)
	// changes; the key is forgotten.
	Done Result = iota
	// Wait: the Service waits for an address (none is free, or the one it
	// carries is contested). The engine wakes it when an address frees up
	// or the config changes; the controller also retries it with back-off,
	// as the compatibility contract says.
	Wait
	// BackOff: retry after a back-off (a write met a conflict, or the
	// decision must be made again). A sync that returns an error asks for
	// this too.
	BackOff
)

// String returns the Result's name.
func (r Result) String() string {
	switch r {
	case Done:
		return "Done"
	case Wait:
		return "Wait"
	case BackOff:
		return "BackOff"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// SyncService brings the Service named key ("namespace/name") to what it
// should have, and says what to do with the key next. An error is retried
// with back-off (the Result is then BackOff), and logged.
func (e *Engine) SyncService(ctx context.Context, key string) (Result, error) {
	logger := klog.FromContext(ctx).WithValues("service", key)
	t := e.beginTurn(key) // oldest first (fair.go)
	defer t.end()
	svc, ok := e.cluster.Cached(key)
	e.mu.Lock()
	pending, uncertain := e.ledger.Uncertain(key)
	e.mu.Unlock()
	if uncertain {
		// Our last write of it may have landed or not: the cache cannot
		// tell (it may just lag), the API server can.
		live, settled, err := e.settleUncertain(ctx, key, pending)
		if err != nil {
			return BackOff, ignoreConflict(err) // a conflict: retried, not logged
		}
		if settled {
			return Done, nil
		}
		svc, ok = live, true
	}
	if !ok {
		e.forget(ctx, key)
		logger.V(2).Info("Service deleted")
		return Done, nil
	}
	e.notice(ctx, svc, key)

	e.mu.Lock()
	if !uncertain && e.ledger.Stale(svc) && !e.opts.Decide.Flaws.Has(mutant.NoLedger) {
		e.mu.Unlock()
		return Done, nil // the cache will show our write and queue it again
	}
	before, _ := e.ledger.Usage().Holding(key)
	wasWaiting := e.waiting[key]
	var d decide.Decision
	switch {
	case e.opts.Decide.Flaws.Has(mutant.NoLedger):
		usage, _ := decide.Rebuild(e.config.cfg, e.cluster.List(), e.opts.Decide)
		usage.Release(key)
		d = decide.Decide(e.config.cfg, usage, svc, e.opts.Decide)
	case uncertain:
		d = e.ledger.DecideLive(e.config.cfg, svc, e.opts.Decide)
	default:
		d = e.ledger.Decide(e.config.cfg, svc, e.opts.Decide)
	}
	if older := t.yield(svc, d, before, uncertain); older != nil {
		e.mu.Unlock()
		logger.V(2).Info("Gives way to older Services waiting for an address", "older", older)
		for _, k := range older {
			e.wake(k)
		}
		return Done, nil
	}
	after, _ := e.ledger.Usage().Holding(key)
	if len(given(before, after)) > 0 {
		e.freeLocked() // freed in the ledger now
	}
	// A Service in conflict waits for the address to free up, whether it
	// holds nothing (Fail) or carries the contested address (Hold).
	contested := d.Action == decide.Hold && d.Err != nil
	if d.Action == decide.Fail || contested || d.Waits {
		e.waiting[key] = true
	} else {
		delete(e.waiting, key)
	}
	e.mu.Unlock()
	switch {
	case contested && !wasWaiting:
		logger.Info("Address in conflict: kept, reported, and granted once the conflict is over", "addresses",
			decide.JoinAddrs(append(slices.Clone(d.Holding.Addrs), d.Holding.Also...)), "reason", d.Err)
	case wasWaiting && d.Action == decide.Hold && d.Err == nil && len(d.Holding.Addrs) > 0 && !d.Waits:
		// The last word must not stay the Warning.
		d.Events = append(d.Events, decide.Event{Type: decide.EventNormal, Reason: decide.ReasonAddressAssigned,
			Message: fmt.Sprintf("%s: no conflict any more, the Service holds it", decide.JoinAddrs(d.Holding.Addrs))})
	}
	if gone := given(before, after); len(gone) > 0 {
		// It gave up an address (released, moved, no longer contested):
		// its claim goes, and the Services waiting on it may have it now.
		e.free(ctx, key, gone)
	}

	switch d.Action {
	case decide.Write, decide.Release:
		if d.Service == nil {
			return Done, nil
		}
		return e.write(ctx, key, svc, d)
	case decide.Fail:
		evs := e.record(ctx, svc, key, d.Events, false)
		e.observe(Outcome{Key: key, What: Failed, Decision: d, Events: evs})
		logger.V(1).Info("No address", "reason", d.Err)
		return Wait, nil
	case decide.Hold:
		evs := e.record(ctx, svc, key, d.Events, false)
		e.observe(Outcome{Key: key, What: Held, Decision: d, Events: evs})
		if d.Err != nil {
			logger.V(1).Info("Address in conflict", "reason", d.Err)
			return Wait, nil // a contested address: woken when it frees up
		}
		return Done, nil
	}
	return Done, nil
}

// waitAgain puts the Service named key back among those waiting for an
// address when the write of d, which would have given it one, did not go
// out (its address's claim said no): it keeps its place in the
// oldest-first order. mu is held.
func (e *Engine) waitAgain(key string, d decide.Decision) {
	if d.Action == decide.Write && d.Allocated {
		e.waiting[key] = true
	}
}

// given returns the addresses before had that after lacks.
func given(before, after allocator.Holding) []netip.Addr {
	in := func(a netip.Addr) bool { return slices.Contains(after.Addrs, a) || slices.Contains(after.Also, a) }
	var out []netip.Addr
	for _, a := range append(slices.Clone(before.Addrs), before.Also...) {
		if !in(a) {
			out = append(out, a)
		}
	}
	return out
}

// write sends the write of d, made against svc, and settles the ledger.
func (e *Engine) write(ctx context.Context, key string, svc *corev1.Service, d decide.Decision) (Result, error) {
	logger := klog.FromContext(ctx).WithValues("service", key)
	var claimed []netip.Addr
	if e.claims != nil && d.Action == decide.Write {
		// Only a claim the API server granted lets the write go out.
		created, taken, again, err := e.claim(ctx, key, d)
		claimed = created
		if err != nil || taken != nil || again {
			e.unclaim(ctx, key, created)
		}
		if err != nil || again {
			e.mu.Lock()
			e.ledger.WriteFailed(d)
			e.waitAgain(key, d)
			e.mu.Unlock()
		}
		if err != nil {
			return BackOff, err
		}
		if again {
			// The claim named a sharer the decision did not know, or
			// another controller changed it meanwhile: decided again,
			// after a back-off.
			logger.V(1).Info("The address claim changed the decision; deciding again", "addresses", decide.JoinAddrs(d.Holding.Addrs))
			e.observe(Outcome{Key: key, What: Rejected, Decision: d, From: svc, Err: errSharers})
			return BackOff, nil
		}
		if taken != nil {
			e.taken(ctx, key, d, *taken)
			e.observe(Outcome{Key: key, What: Rejected, Decision: d, From: svc, Err: errClaimed})
			return Done, nil
		}
	}
	stored, err := e.cluster.Patch(ctx, svc, d.Service)
	if err != nil {
		rejected := refused(err) || e.opts.Decide.Flaws.Has(mutant.ForgetLostWrites)
		if rejected && e.claims != nil {
			e.unclaim(ctx, key, claimed) // it cannot land: its fresh claims go
		}
		e.mu.Lock()
		if rejected {
			e.ledger.WriteFailed(d)
			if d.Action == decide.Write && d.Allocated {
				e.freeLocked() // what it would have taken is free now
			}
			// What the cache shows it carrying now (the user's edit
			// that made the write fail) stays reserved.
			if cached, ok := e.cluster.Cached(key); ok && !e.opts.Decide.Flaws.Has(mutant.ReleaseWholeOn409) {
				e.ledger.Observe(cached, e.opts.Decide)
			}
		} else {
			e.ledger.WriteUncertain(d)
		}
		e.mu.Unlock()
		what := Uncertain
		if rejected {
			what = Rejected
		}
		e.observe(Outcome{Key: key, What: what, Decision: d, From: svc, Err: err})
		if rejected && d.Action == decide.Write && d.Allocated {
			e.free(ctx, key, nil) // what it would have taken is free again (it made no claim that stands)
		}
		switch {
		case apierrors.IsNotFound(err):
			return Done, nil
		case apierrors.IsConflict(err):
			logger.V(2).Info("Service changed while we wrote it; retrying")
			return BackOff, nil
		}
		return BackOff, fmt.Errorf("update Service %s: %w", key, err)
	}
	e.mu.Lock()
	e.ledger.Written(d, stored.ResourceVersion)
	if d.Action == decide.Release {
		e.freeLocked()
	}
	e.mu.Unlock()
	e.landed(ctx, key, d, svc, stored, false)
	return Done, nil
}

// landed tells what a write of d did, once it is known to have landed:
// a log line, the Events, the Observer; a released address wakes the
// Services waiting for one.
func (e *Engine) landed(ctx context.Context, key string, d decide.Decision, from, stored *corev1.Service, resent bool) {
	logger := klog.FromContext(ctx).WithValues("service", key)
	switch {
	case d.Action == decide.Write:
		logger.Info("Address assigned", "addresses", decide.JoinAddrs(d.Holding.Addrs))
	case len(d.Holding.Addrs) > 0:
		logger.Info("Address released", "addresses", decide.JoinAddrs(d.Holding.Addrs))
	default:
		logger.V(2).Info("Finalizer removed", "finalizer", decide.FinalizerLoadBalancerCleanup)
	}
	evs := e.record(ctx, stored, key, d.Events, true)
	e.observe(Outcome{Key: key, What: Written, Decision: d, From: from, Stored: stored, Resent: resent, Events: evs})
	if d.Action == decide.Release {
		e.free(ctx, key, d.Holding.Addrs)
	}
}

// settleUncertain reads a Service whose last write (pending) got no
// answer. When the write has landed, its Events are recorded and live is
// returned to be decided on. When the Service is still at the version the
// write was made against, the write may still land: rather than decide
// anew, which could pick other addresses, the same write is sent again
// (settled is then true); whichever of the two lands, the Service gets the
// same addresses. Otherwise the Service has moved on without it, and the
// write can no longer land: live is returned to be decided on afresh. The
// reservation stands until one of these has happened.
func (e *Engine) settleUncertain(ctx context.Context, key string, pending decide.Decision) (live *corev1.Service, settled bool, err error) {
	logger := klog.FromContext(ctx).WithValues("service", key)
	live, err = e.cluster.Live(ctx, key)
	if apierrors.IsNotFound(err) {
		e.forget(ctx, key)
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read Service %s after a write of unknown outcome: %w", key, err)
	}
	live = live.DeepCopy()
	live.ManagedFields = nil
	switch {
	case pending.Landed(live):
		logger.Info("A write whose answer was lost had landed", "addresses", decide.JoinAddrs(pending.Holding.Addrs))
		e.landed(ctx, key, pending, nil, live, true)
		return live, false, nil
	case live.ResourceVersion == pending.Service.ResourceVersion && e.servedByOthers(key, live, pending):
		// It has not landed, and what it would give is served on by
		// another Service by now (a user's edit of its status, say):
		// sent again, it would make a collision. Decided afresh instead;
		// both writes name this resourceVersion, so at most one lands.
		e.mu.Lock()
		e.ledger.WriteFailed(pending)
		e.mu.Unlock()
		if e.claims != nil && pending.Action == decide.Write {
			e.unclaim(ctx, key, pending.Holding.Addrs)
		}
		logger.Info("A write whose answer was lost would now give an address another Service is served on; deciding afresh",
			"addresses", decide.JoinAddrs(pending.Holding.Addrs))
		return live, false, nil
	case live.ResourceVersion == pending.Service.ResourceVersion:
		stored, err := e.cluster.Patch(ctx, live, pending.Service)
		if apierrors.IsNotFound(err) {
			return e.settleUncertain(ctx, key, pending) // gone: forget it
		}
		if refused(err) && !apierrors.IsConflict(err) {
			// The same write, to the same version, refused outright: so
			// would the first one be. It cannot land; decide afresh.
			e.mu.Lock()
			e.ledger.WriteFailed(pending)
			e.mu.Unlock()
			if e.claims != nil && pending.Action == decide.Write {
				e.unclaim(ctx, key, pending.Holding.Addrs) // what it claimed for the write goes
			}
			logger.Info("A write whose answer was lost was refused when sent again", "err", err)
			return live, false, nil
		}
		if err != nil {
			// Still unknown (a conflict means the Service moved on, maybe
			// by our first write): the next read will tell.
			return nil, false, fmt.Errorf("write Service %s again after a write of unknown outcome: %w", key, err)
		}
		e.mu.Lock()
		e.ledger.Written(pending, stored.ResourceVersion)
		e.mu.Unlock()
		logger.Info("A write whose answer was lost was sent again", "addresses", decide.JoinAddrs(pending.Holding.Addrs))
		e.landed(ctx, key, pending, live, stored, true)
		return stored, true, nil
	}
	return live, false, nil
}

// servedByOthers reports whether an address the write of pending would
// give svc (one svc, read live, does not carry yet) is by now served on by
// another Service that cannot share it: one this controller does not
// manage, one in conflict, or one served on it without holding it.
func (e *Engine) servedByOthers(key string, svc *corev1.Service, pending decide.Decision) bool {
	if pending.Action != decide.Write {
		return false
	}
	// What it carries already (its annotation, its status): the write
	// gives it nothing new there. What it only asks for (its
	// spec.loadBalancerIP, say) the write would give it now.
	carried := decide.StatusAddresses(svc)
	if svc.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
		as, _, _ := decide.Addresses(svc)
		carried = append(carried, as...)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	usage := e.ledger.Usage()
	for _, a := range pending.Holding.Addrs {
		if slices.Contains(carried, a) {
			continue
		}
		for _, o := range usage.Holders(a) {
			h, _ := usage.Holding(o)
			if o != key && (h.Exclusive || h.Contested || slices.Contains(h.Also, a)) {
				return true
			}
		}
	}
	return false
}

// forget drops a deleted Service; its addresses (and their claims) are
// free again.
func (e *Engine) forget(ctx context.Context, key string) {
	e.mu.Lock()
	h, held := e.ledger.Usage().Holding(key)
	e.ledger.Forget(key)
	if held {
		e.freeLocked()
	}
	delete(e.waiting, key)
	delete(e.arbitrated, key)
	e.seen.Forget(key)
	e.mu.Unlock()
	if held {
		e.free(ctx, key, h.Addrs)
	}
	e.leaveDeleted(ctx, key, h.Addrs)
}

// errClaimed is the error of a write that did not go out: another holds
// the address in the API server's claims.
var errClaimed = errors.New("the address is claimed by another (IPAddress)")

// errSharers is the error of a write that did not go out: the address's
// claim names a sharer the decision did not know of, or changed while the
// Service was added to it.
var errSharers = errors.New("the address's claim names sharers the decision did not know of, or changed meanwhile")

// record emits evs on svc, skipping those its last decision recorded
// already unless force is set, and returns those it emitted. A Warning is
// logged too, at the default verbosity: a refusal must not read like
// success in the log either (a retry that records nothing new logs
// nothing new).
func (e *Engine) record(ctx context.Context, svc *corev1.Service, key string, evs []decide.Event, force bool) []decide.Event {
	e.mu.Lock()
	evs = e.seen.Fresh(key, evs, force)
	e.mu.Unlock()
	e.emit(ctx, svc, key, evs)
	return evs
}

// emit records evs on svc, the Service named key, and logs the Warnings.
func (e *Engine) emit(ctx context.Context, svc *corev1.Service, key string, evs []decide.Event) {
	for _, ev := range evs {
		e.recorder.Event(svc, ev.Type, ev.Reason, ev.Message)
		if ev.Type == decide.EventWarning {
			klog.FromContext(ctx).Info("Warning", "service", key, "reason", ev.Reason, "message", ev.Message)
		}
	}
}

// ignoreConflict returns err unless it is a conflict, which is retried
// without being logged as an error.
func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}
