package engine

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// Fairness: when addresses free up, the Services waiting for one are
// served oldest first (creation timestamp, then namespace/name), however
// many workers sync at once and in whatever order their keys come up.
//
// Queueing the waiting keys oldest first (wakeWaiting) is not enough: with
// several workers two woken keys race for the engine's lock, a younger
// waiting Service may be retried by the work queue's back-off first, and a
// brand-new Service may be synced before any of them. So the sync itself
// gives way. Each wake-up (wakeWaiting, a new config) starts a generation;
// each waiting Service owes a turn in it until one of its syncs has ended.
// A decision that would give a Service an address it does not hold yet
// (a new one, a family added, a contested request granted) is not acted on
// while an older waiting Service still owes its turn: the younger one is
// deferred (the ledger goes back to what it held, it waits), the oldest
// Service owing a turn is queued (all were, as the generation began), and
// the deferred ones are queued again as soon as a waiting Service's turn
// ends. Waking every older one instead would cost a start with N Services
// waiting N squared wake-ups. Requested addresses (the annotation,
// spec.loadBalancerIP) go by the same rule: of the Services waiting for a
// contested address, the oldest is granted it. For that, a Service that only
// asks for an address (carrying it neither in our annotation nor in a
// status) never blocks another's request for it: the decision lets either
// have it (decide: Holding.OnlyAsks), and the turns here say which.
//
// No livelock: the oldest Service owing a turn never gives way, and is
// queued; every sync of it that does not give way ends its turn (one that
// fails before deciding, an API error say, ends it too: it is retried with
// back-off, but does not hold the others up meanwhile); a Service the
// cache no longer shows owes nothing. A Service deferred for ever would
// need a wake-up for ever before its elders' turns end.

// fairState is the engine's record of the turns owed; guarded by the
// engine's mu. Its maps are made on first use.
type fairState struct {
	// gen counts the wake-ups.
	gen uint64
	// turned maps a waiting Service's key to the generation in which its
	// last turn ended (none: generation 0).
	turned map[string]uint64
	// deferred holds the keys that gave way to older Services; they are
	// queued again when a waiting Service's turn ends.
	deferred map[string]bool
}

// newGeneration starts a wake-up generation: every waiting Service owes a
// turn again. mu is held.
func (e *Engine) newGeneration() { e.fair.gen++ }

// turn is one sync's part in serving the waiting Services in order.
type turn struct {
	e   *Engine
	key string
	// gen is the generation the sync decided in (the one it began in,
	// until it decides).
	gen uint64
	// waited: the key was waiting when the sync began.
	waited bool
	// deferred: the sync gave way to older Services.
	deferred bool
}

// beginTurn starts the sync of key; its end must be called when the sync
// returns.
func (e *Engine) beginTurn(key string) *turn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return &turn{e: e, key: key, gen: e.fair.gen, waited: e.waiting[key]}
}

// yield is called with mu held, once the ledger has decided d for svc
// (before is what svc held until then; uncertain: decided on a live read
// after a write of unknown outcome). When d would give svc an address it
// does not hold yet while an older waiting Service owes its turn, the
// decision is undone and svc waits: yield returns the oldest of those, to
// be queued (in case it was not: all were when the generation began), and
// the sync must end without acting on d. Otherwise it returns nil.
func (t *turn) yield(svc *corev1.Service, d decide.Decision, before allocator.Holding, uncertain bool) []string {
	e := t.e
	t.gen = e.fair.gen
	if uncertain || e.opts.Decide.Flaws.Has(mutant.NoLedger) || e.opts.Decide.Flaws.Has(mutant.Unfair) {
		// An uncertain write's addresses were reserved before; without
		// a ledger there is nothing to undo.
		return nil
	}
	if d.Action != decide.Write && d.Action != decide.Hold {
		return nil
	}
	after, _ := e.ledger.Usage().Holding(t.key)
	if !gains(before, after) {
		return nil
	}
	oldest, owed := e.oldestOwing(t.key, svc.CreationTimestamp.Time)
	if !owed {
		return nil
	}
	e.ledger.Revert(t.key, before)
	e.waiting[t.key] = true
	if e.fair.deferred == nil {
		e.fair.deferred = map[string]bool{}
	}
	e.fair.deferred[t.key] = true
	t.deferred = true
	return []string{oldest}
}

// end ends the sync: unless it gave way, the key's turn in the generation
// it decided in is over, and when the key was waiting, the Services that
// gave way are queued again (those that must still wait give way again).
func (t *turn) end() {
	e := t.e
	if t.deferred {
		return
	}
	e.mu.Lock()
	delete(e.fair.deferred, t.key)
	if e.waiting[t.key] {
		if e.fair.turned == nil {
			e.fair.turned = map[string]uint64{}
		}
		e.fair.turned[t.key] = max(e.fair.turned[t.key], t.gen)
	} else {
		delete(e.fair.turned, t.key)
	}
	var again []string
	if t.waited && len(e.fair.deferred) > 0 {
		for k := range e.fair.deferred {
			again = append(again, k)
		}
		clear(e.fair.deferred)
	}
	e.mu.Unlock()
	for _, k := range e.oldestFirst(again) {
		e.wake(k)
	}
}

// oldestOwing returns the oldest of the waiting Services older than the
// one named key (created at created) that owe a turn in the current
// generation, and whether there is one; one the cache no longer shows owes
// none. One pass, no sorting: at a start every Service without an address
// waits, and each sync asks. mu is held.
func (e *Engine) oldestOwing(key string, created time.Time) (string, bool) {
	var oldest string
	var oldestAt time.Time
	found := false
	for k := range e.waiting {
		if k == key || e.fair.turned[k] >= e.fair.gen {
			continue
		}
		svc, ok := e.cluster.Cached(k)
		if !ok {
			continue
		}
		at := svc.CreationTimestamp.Time
		if olderThan(at, k, created, key) && (!found || olderThan(at, k, oldestAt, oldest)) {
			oldest, oldestAt, found = k, at, true
		}
	}
	return oldest, found
}

// waitingAtStart rebuilds the set of Services waiting for an address, which
// only the memory of the controller that stopped held: the managed
// LoadBalancers without an address in a pool that has not enough free
// addresses of a family for all of them. There the oldest must be served
// first, after a start as before it. Where the addresses go round (the
// usual install: every Service gets one) none is marked: the order changes
// nothing there, and serving them strictly one after the other would cost
// a large start its speed.
func waitingAtStart(cfg *allocator.Config, usage *allocator.Usage, services []*corev1.Service, o decide.Options) map[string]bool {
	without := map[*allocator.Pool][]string{}
	for _, s := range services {
		k := decide.Key(s)
		if _, held := usage.Holding(k); held || cfg == nil || !decide.IsLoadBalancer(s) || !decide.Managed(s, o) {
			continue
		}
		if p := cfg.PoolFor(s.Namespace); p != nil && !p.DHCP() {
			without[p] = append(without[p], k)
		}
	}
	waiting := map[string]bool{}
	for p, keys := range without {
		if short(usage, p, len(keys)) {
			for _, k := range keys {
				waiting[k] = true
			}
		}
	}
	return waiting
}

// short reports whether the pool p has fewer than n free addresses of a
// family it has.
func short(usage *allocator.Usage, p *allocator.Pool, n int) bool {
	for _, f := range []allocator.Family{allocator.IPv4, allocator.IPv6} {
		if p.Has(f) && p.Size(f).Sub(usage.Used(p, f)).Float64() < float64(n) {
			return true
		}
	}
	return false
}

// gains reports whether after holds an address before did not hold (one
// it was only served on, contested, does not count as held).
func gains(before, after allocator.Holding) bool {
	for _, a := range after.Addrs {
		if !slices.Contains(before.Addrs, a) {
			return true
		}
	}
	return false
}

// olderThan reports whether the Service a (created at ca) comes before b
// (created at cb) in the order waiting Services are served in: creation
// timestamp, then namespace/name.
func olderThan(ca time.Time, a string, cb time.Time, b string) bool {
	if c := ca.Compare(cb); c != 0 {
		return c < 0
	}
	return a < b
}

// oldestFirst sorts keys (in place, and returns them) by creation
// timestamp as the cache shows it, then by namespace/name; one that the
// cache no longer shows comes first (its sync only forgets it).
func (e *Engine) oldestFirst(keys []string) []string {
	created := make(map[string]time.Time, len(keys))
	for _, k := range keys {
		if svc, ok := e.cluster.Cached(k); ok {
			created[k] = svc.CreationTimestamp.Time
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := created[a].Compare(created[b]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return keys
}
