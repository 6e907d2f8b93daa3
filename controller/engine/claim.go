package engine

import (
	"context"
	"fmt"
	"maps"
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

// create makes a claim of a naming holders (the first its owner) and
// remembers it as this engine's own. It records the UID of each holder:
// the one known gives (the Service written, or read live, now), else the
// cache's copy's, else the one prev (the record of the claim it replaces)
// gives; none when the UID is nowhere.
func (e *Engine) create(ctx context.Context, a netip.Addr, holders []string, known, prev map[string]string) (Claim, error) {
	uids := map[string]string{}
	for _, h := range holders {
		uid := known[h]
		if svc, ok := e.cluster.Cached(h); uid == "" && ok {
			uid = string(svc.UID)
		}
		if uid == "" {
			uid = prev[h]
		}
		if uid != "" {
			uids[h] = uid
		}
	}
	c, err := e.claims.Create(ctx, Claim{Addr: a, Owner: holders[0], Sharers: slices.Clone(holders[1:]), UIDs: uids})
	if err == nil && c.ID != "" {
		e.mu.Lock()
		e.made[c.ID] = true
		e.mu.Unlock()
	}
	return c, err
}

// uidOf returns svc's UID as a record of known UIDs for create; nil for
// no Service.
func uidOf(svc *corev1.Service) map[string]string {
	if svc == nil || svc.UID == "" {
		return nil
	}
	return map[string]string{decide.Key(svc): string(svc.UID)}
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
			holders := []string{key}
			if len(others) > 0 {
				holders = append(slices.Clone(others), key)
			}
			c, err = e.create(ctx, a, holders, uidOf(d.Service), nil)
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
		case c.Ours() && len(others) > 0 && e.opts.Decide.Flaws.Has(mutant.UnrecordedSharers):
		case c.Ours() && len(others) > 0:
			// The ledger shares a with a Service of ours: the claim must
			// record key, and may name sharers the ledger does not know.
			joined, err := e.join(ctx, c, key, uidOf(d.Service), others, e.asks(key, a))
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
// (known: key's UID; others: the Services the ledger has holding its
// address besides key, recorded too). Every
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
func (e *Engine) join(ctx context.Context, c Claim, key string, known map[string]string, others []string, asked bool) (bool, error) {
	a := c.Addr
	e.mu.Lock()
	arbitrated := asked && e.arbitrated[key] == c.ID
	e.mu.Unlock()
	var keep []string
	learned := false
	uids := maps.Clone(known)
	if uids == nil {
		uids = map[string]string{}
	}
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
			if time.Since(c.Created) >= e.grace || !e.madeFor(live, c) {
				// It never took the address, or it is another Service
				// of that name (no write for the claim's can be on its
				// way to it): off the record.
				continue
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
		uids[u] = string(live.UID)
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
	return e.replace(ctx, c, append(keep, key), uids)
}

// replace puts a claim naming holders (the first its owner) in the place
// of c: c is deleted by its ID, then the new one created, recording the
// UIDs known (the Services read live now), else the cache's, else those c
// records (see create). It returns false
// when another claim of the address came first (c had been replaced, or
// was recreated meanwhile); an error when the new claim could not be made
// (the address is then unclaimed until the repair claims it again).
func (e *Engine) replace(ctx context.Context, c Claim, holders []string, known map[string]string) (bool, error) {
	if err := e.claims.Delete(ctx, c); err != nil {
		if goneOrReplaced(err) {
			return false, nil
		}
		return false, fmt.Errorf("claim %s: replace the claim of %s: %w", c.Addr, strings.Join(c.holders(), ","), err)
	}
	if len(holders) == 0 {
		return true, nil
	}
	if _, err := e.create(ctx, c.Addr, holders, known, c.UIDs); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return false, fmt.Errorf("claim %s for %s: %w", c.Addr, strings.Join(holders, ","), err)
	}
	return true, nil
}

// taken undoes the write of d, whose address c holds for someone else: the
// address is in use from now on, and the Service is decided again at once.
func (e *Engine) taken(ctx context.Context, key string, d decide.Decision, c Claim) {
	klog.FromContext(ctx).Info("Address claimed by another; deciding again", "service", key, "address", c.Addr,
		"claimedFor", c.Owner, "managedBy", c.Manager)
	e.mu.Lock()
	e.ledger.WriteFailed(d)
	e.waitAgain(key, d)
	e.reserveFor(c)
	e.mu.Unlock()
	// The claim may have gone (and its ClaimGone passed) while it was
	// read: the reservation must not outlive it.
	if cur, ok := e.claims.Get(c.Addr); !ok || (c.ID != "" && cur.ID != c.ID) {
		e.ClaimGone(c)
	}
	e.wake(key)
}
