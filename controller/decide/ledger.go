package decide

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/resourceversion"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// Ledger is the controller's own record of the addresses in use. An
// informer cache lags the API server: right after we give a Service an
// address, the cache still shows it without one, and deciding from the cache
// alone would hand the same address to the next Service. The ledger records
// every successful write at once, remembers the resourceVersion the write
// produced, and ignores cached copies of that Service older than it.
//
// A Ledger is not safe for concurrent use; the controller guards it.
type Ledger struct {
	usage *allocator.Usage
	// written maps a Service key to the newest resourceVersion of it this
	// ledger knows of: our last write of it, or the newest copy observed
	// (read live, say); a cached copy older than that is Stale.
	written map[string]string
	// uncertain holds the decisions whose write may or may not have landed
	// (the answer was lost: a time-out, a dropped connection), by Service.
	uncertain map[string]Decision
	// flaws are deliberate defects, set only by SetFlaws in a build with
	// the tag mutants; empty in any other.
	flaws mutant.Flaws
}

// NewLedger returns a ledger that starts from usage (nil for an empty one),
// e.g. the result of Rebuild after a restart.
func NewLedger(usage *allocator.Usage) *Ledger {
	if usage == nil {
		usage = allocator.NewUsage()
	}
	return &Ledger{usage: usage, written: map[string]string{}, uncertain: map[string]Decision{}}
}

// Usage returns the addresses in use as the ledger sees them. Callers must
// not change it.
func (l *Ledger) Usage() *allocator.Usage { return l.usage }

// Stale reports whether svc, as read from a cache, is older than our own
// last write of it or than a copy observed before; a stale copy must not be
// decided on.
func (l *Ledger) Stale(svc *corev1.Service) bool {
	rv, ok := l.written[Key(svc)]
	if !ok {
		return false
	}
	c, err := resourceversion.CompareResourceVersion(svc.ResourceVersion, rv)
	if err != nil {
		// Not comparable (never with a real API server): trust the cache
		// only once it shows what we wrote.
		return svc.ResourceVersion != rv
	}
	return c < 0
}

// Decide reconciles the ledger with a fresh (not Stale) copy of svc and
// returns what svc should have; for an Uncertain Service, the copy must be
// read from the API server itself, not from a cache. The ledger side of the decision is applied
// at once: a Write reserves its addresses while it is in flight, so that no
// other Service can be given them; the caller then reports the outcome with
// Written or WriteFailed.
func (l *Ledger) Decide(cfg *allocator.Config, svc *corev1.Service, o Options) Decision {
	key := Key(svc)
	delete(l.written, key)
	delete(l.uncertain, key)
	// The fresh copy is the truth about what svc holds: forget our view of it.
	l.usage.Release(key)
	d := Decide(cfg, l.usage, svc, o)
	d.Apply(l.usage, key)
	return d
}

// DecideLive is Decide for a copy of svc read from the API server itself,
// not from a cache: cached copies older than it are Stale from now on, so
// that a lagging cache cannot undo what the live read showed.
func (l *Ledger) DecideLive(cfg *allocator.Config, svc *corev1.Service, o Options) Decision {
	d := l.Decide(cfg, svc, o)
	l.written[Key(svc)] = svc.ResourceVersion
	return d
}

// Written records that the API server accepted the write of a Write or a
// Release (also one whose outcome was Uncertain, once that is settled); rv
// is the resourceVersion it returned. Until the cache shows that version,
// older cached copies of the Service are Stale. A Release's address is free
// from now on.
func (l *Ledger) Written(d Decision, rv string) {
	key := Key(d.Service)
	if d.Action == Release {
		l.usage.Release(key)
	}
	l.written[key] = rv
	delete(l.uncertain, key)
}

// WriteFailed undoes the reservation of a Write the API server refused:
// newly allocated addresses are free again; addresses the Service already
// carried stay held, and so does the address of a Release whose write
// failed (the Service still carries it).
func (l *Ledger) WriteFailed(d Decision) {
	if d.Action == Write && d.Allocated {
		l.undo(d)
	}
	if d.Service != nil {
		delete(l.uncertain, Key(d.Service))
	}
}

// undo frees what the refused write d would have added, and only that:
// what the Service came to carry meanwhile (the user's edit that made the
// write fail, say) was reserved by Observe and stays reserved.
func (l *Ledger) undo(d Decision) {
	key := d.Holding.Owner
	h, ok := l.usage.Holding(key)
	if !ok || l.flaws.Has(mutant.ReleaseWholeOn409) {
		l.usage.Release(key)
		return
	}
	h.Addrs = slices.DeleteFunc(h.Addrs, func(a netip.Addr) bool { return slices.Contains(d.Holding.Addrs, a) })
	h.Also = slices.DeleteFunc(h.Also, func(a netip.Addr) bool { return slices.Contains(d.Holding.Addrs, a) })
	if len(h.Addrs) == 0 && len(h.Also) == 0 {
		l.usage.Release(key)
		return
	}
	// Not decided yet: in use, but it beats no one.
	h.Also = append(h.Also, h.Addrs...)
	h.Addrs = nil
	l.usage.Assign(h)
}

// Revert puts back what the Service named key held before a decision the
// caller will not act on (it gives way to another Service): before, as
// Usage().Holding returned it (the zero Holding: nothing).
func (l *Ledger) Revert(key string, before allocator.Holding) {
	l.usage.Release(key)
	if before.Owner != "" {
		l.usage.Assign(before)
	}
}

// WriteUncertain records that a write of d got no answer that says whether
// it landed (a time-out, a dropped connection, a server error). The write
// may have landed, so its addresses stay reserved: freeing them could give
// them to a second Service. The Service is Uncertain until Decide is given
// a copy of it read from the API server.
func (l *Ledger) WriteUncertain(d Decision) {
	l.uncertain[Key(d.Service)] = d
}

// Uncertain reports whether the Service named key has a write whose outcome
// is unknown, and returns its decision; the Service must be read from the
// API server before it is decided (see Decision.Landed).
func (l *Ledger) Uncertain(key string) (Decision, bool) {
	d, ok := l.uncertain[key]
	return d, ok
}

// Observe reserves, as soon as a cache shows svc, every address it is
// served on (InUse: its annotation, valid or not, spec.loadBalancerIP, its
// status), before its turn in the queue comes: a Service may appear
// carrying addresses (a user's annotation, a restore, another provider)
// while the controller is busy with others, and until it is decided
// nothing else may be given them. It only ever adds, as Also (an address
// another Service holds stays that Service's); deciding svc settles what
// it holds.
//
// What it already holds becomes harder to share, never easier: the ports
// it shows now are added to those recorded, a Service that is no longer
// managed (kube-vip.io/ignore, say) holds exclusively from now on, one
// that shows an address carried (annotation, status) no longer only asks,
// and an address it no longer carries is only served on.
func (l *Ledger) Observe(svc *corev1.Service, o Options) {
	if l.Stale(svc) {
		return
	}
	// Older copies (a cache that lags behind a live read) are stale from
	// now on: deciding on one would drop what this one shows.
	l.written[Key(svc)] = svc.ResourceVersion
	if !IsLoadBalancer(svc) {
		return
	}
	h, held := l.usage.Holding(Key(svc))
	changed := false
	if held {
		for _, p := range Ports(svc) {
			if !slices.Contains(h.Ports, p) {
				h.Ports = append(h.Ports, p)
				changed = true
			}
		}
		if exclusive(svc, o) && !h.Exclusive {
			h.Exclusive, changed = true, true
		}
		if h.OnlyAsks && (h.Exclusive || !onlyAsks(svc)) {
			h.OnlyAsks, changed = false, true
		}
		// An address it no longer asks for (the user moved it) is only
		// served on until it is decided: in use, but not shared.
		carried, _, _ := Addresses(svc)
		if len(carried) == 0 {
			carried = StatusAddresses(svc)
		}
		for _, a := range slices.Clone(h.Addrs) {
			if !slices.Contains(carried, a) {
				h.Addrs = slices.DeleteFunc(h.Addrs, func(b netip.Addr) bool { return b == a })
				h.Also = append(h.Also, a)
				changed = true
			}
		}
	} else {
		h = Holding(svc, nil)
		h.Also = nil
		h.Exclusive = exclusive(svc, o)
		h.OnlyAsks = !h.Exclusive && onlyAsks(svc)
	}
	for _, a := range InUse(svc) {
		if !slices.Contains(h.Addrs, a) && !slices.Contains(h.Also, a) {
			h.Also = append(h.Also, a)
			changed = true
		}
	}
	if changed {
		l.usage.Assign(h)
	}
}

// exclusive reports whether what svc carries is no one's to share: it is
// not managed here, or what it asks for is not a valid request.
func exclusive(svc *corev1.Service, o Options) bool {
	if o.Flaws.Has(mutant.ShareWithUnmanaged) {
		return false
	}
	if !Managed(svc, o) {
		return true
	}
	as, _, err := Addresses(svc)
	return err != nil || !OnePerFamily(as)
}

// Forget releases a deleted Service.
func (l *Ledger) Forget(key string) {
	delete(l.written, key)
	delete(l.uncertain, key)
	l.usage.Release(key)
}
