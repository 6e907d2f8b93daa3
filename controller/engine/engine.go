package engine

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// Cluster is what the engine needs of the API server and of the cache
// that mirrors it. Errors are the API server's (k8s.io/apimachinery's
// api/errors): NotFound, Conflict and the like.
type Cluster interface {
	// Cached returns the Service named key ("namespace/name") as the cache
	// shows it; false when the cache has none.
	Cached(key string) (*corev1.Service, bool)
	// List returns every Service the cache holds.
	List() []*corev1.Service
	// Live reads the Service named key from the API server itself.
	Live(ctx context.Context, key string) (*corev1.Service, error)
	// Patch writes to over from, only if the Service is still at from's
	// resourceVersion (a Conflict otherwise), and returns what was stored.
	Patch(ctx context.Context, from, to *corev1.Service) (*corev1.Service, error)
}

// Recorder records Events; client-go's record.EventRecorder is one.
type Recorder interface {
	Event(object runtime.Object, eventtype, reason, message string)
}

// What names what happened in a sync, for an Observer.
type What string

// What a sync can end in.
const (
	// Written: a write of the decision landed and the API server said so
	// (also a write whose answer was lost, once a live read showed it, and
	// one sent again).
	Written What = "write"
	// Rejected: the API server turned the write down (a conflict, say).
	Rejected What = "rejected"
	// Uncertain: the write got no answer that says whether it landed.
	Uncertain What = "uncertain"
	// Failed: the Service holds nothing and cannot get an address now.
	Failed What = "fail"
	// Held: the Service keeps what it carries (with Err: contested).
	Held What = "hold"
)

// Outcome tells an Observer what one step of a sync did.
type Outcome struct {
	Key  string
	What What
	// Decision is the decision acted on.
	Decision decide.Decision
	// From is the Service a write was made against (Written, Rejected,
	// Uncertain), Stored what the API server stored (Written).
	From, Stored *corev1.Service
	// Resent is set on a Written that sent a write of unknown outcome
	// again, and on one whose landing a live read showed.
	Resent bool
	// Events are the Events recorded now (repeats left out).
	Events []decide.Event
	// Err is the write's error (Rejected, Uncertain).
	Err error
}

// Observer is told the outcome of each sync step (metrics, the
// simulator's trace and invariants); nil observes nothing.
type Observer interface {
	Observe(Outcome)
	// ConfigLoaded is told the malformed keys of each ConfigMap version.
	ConfigLoaded(errs []*allocator.KeyError)
}

// Options configure an Engine.
type Options struct {
	// Decide selects the Services handled (and, built with the tag
	// mutants only, the broken-engine tests' Flaws).
	Decide decide.Options
	// Claims, when set, makes every address given out claimed first in
	// the API server (one IPAddress object per address); nil runs without.
	Claims Claims
	// ClaimGrace is how old a claim of ours must be before the repair
	// deletes it as stale (default 1m, as the API server's own repair).
	ClaimGrace time.Duration
	// ConfigMap is the "namespace/name" of the ConfigMap the pools come
	// from, named in the NoPool failures while it does not exist. When
	// empty, the name of the last version loaded is used.
	ConfigMap string
	// LastGood, when set, keeps the last good value of every ConfigMap
	// key in the API server: a key malformed when the controller starts
	// keeps the value it had before the restart.
	LastGood LastGood
}

// Engine runs the sync protocol. It is safe for concurrent use: several
// workers may sync different keys at once.
type Engine struct {
	cluster  Cluster
	recorder Recorder
	observer Observer
	wake     func(key string)
	opts     Options
	claims   Claims
	grace    time.Duration

	mu     sync.Mutex
	ledger *decide.Ledger
	config configState
	// waiting holds the Services that could not get an address (or carry
	// a contested one); they are synced again when an address frees up.
	waiting map[string]bool
	// fair records the turns the waiting Services owe (fair.go).
	fair fairState
	// seen de-duplicates repeated Events per Service.
	seen *decide.EventMemory
	// claimants holds the ledger owners that stand for claims (claimant),
	// as opposed to Services.
	claimants map[string]bool
	// made holds the IDs of the claims this engine created (until they
	// are gone): another's young claim is not released on its word.
	made map[string]bool
	// arbitrated holds, per Service, the claim that last arbitrated a
	// request of its own against another the claim names.
	arbitrated map[string]string
}

// New returns an Engine with an empty ledger and no config; Start fills
// both in. wake queues a Service key for a sync.
func New(cluster Cluster, recorder Recorder, observer Observer, wake func(key string), opts Options) *Engine {
	if opts.ClaimGrace <= 0 {
		opts.ClaimGrace = time.Minute
	}
	return &Engine{
		cluster: cluster, recorder: recorder, observer: observer, wake: wake, opts: opts, claims: opts.Claims,
		grace:   opts.ClaimGrace,
		ledger:  newLedger(nil, opts.Decide.Flaws),
		waiting: map[string]bool{},
		seen:    decide.NewEventMemory(),
		made:    map[string]bool{},

		claimants: map[string]bool{},

		arbitrated: map[string]string{},
	}
}

// UseClaims turns the address claims on (c not nil) or off; call it
// before Start.
func (e *Engine) UseClaims(c Claims) { e.claims = c }

// Start loads the ConfigMap (nil when there is none) and rebuilds the
// ledger and the set of Services waiting for an address from services, the
// cluster being the only state; then it wakes every one of them (oldest
// first) for a sync. First it frees the address claims of Services deleted
// while no controller ran. It returns how many Services hold addresses and
// how many carry one in conflict.
func (e *Engine) Start(ctx context.Context, cm *corev1.ConfigMap, services []*corev1.Service) (holding, conflicts int) {
	var freed map[string]bool
	if e.claims != nil {
		freed = e.freeOrphans(ctx)
	}
	e.loadLastGood(ctx)
	holding, conflicts = e.rebuild(ctx, cm, services, freed)
	e.mu.Lock()
	save, changed := e.lastGoodToSave(cm)
	e.mu.Unlock()
	if changed {
		e.saveLastGood(ctx, save)
	}
	e.wakeAll(services)
	return holding, conflicts
}

// wakeAll wakes every one of services for a sync, oldest first (creation
// timestamp, then namespace/name): the waiting among them are served in
// that order.
func (e *Engine) wakeAll(services []*corev1.Service) {
	keys := make([]string, 0, len(services))
	for _, s := range services {
		keys = append(keys, decide.Key(s))
	}
	for _, k := range e.oldestFirst(keys) {
		e.wake(k)
	}
}

// rebuild is Start's part under the lock; freed holds the IDs of the
// claims freed at start, which the cache may still show.
func (e *Engine) rebuild(ctx context.Context, cm *corev1.ConfigMap, services []*corev1.Service, freed map[string]bool) (holding, conflicts int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.loadConfig(ctx, cm)
	var claimed map[string]bool
	if e.claims != nil {
		claimed = map[string]bool{}
		for _, c := range e.claims.List() {
			if c.Ours() && !freed[c.ID] {
				claimed[c.Owner] = true
			}
		}
	}
	usage, cs := decide.RebuildClaimed(e.config.cfg, services, e.opts.Decide, claimed)
	e.ledger = newLedger(usage, e.opts.Decide.Flaws)
	e.waiting = waitingAtStart(e.config.cfg, usage, services, e.opts.Decide)
	e.newGeneration()
	e.claimants = map[string]bool{}
	if e.claims != nil {
		e.registerClaims(freed)
	}
	return usage.Len(), len(cs)
}

// Observe reserves what svc is served on as soon as a cache shows it,
// before its turn in the queue comes.
func (e *Engine) Observe(svc *corev1.Service) {
	if e.opts.Decide.Flaws.Has(mutant.NoLedger) {
		return
	}
	e.mu.Lock()
	e.ledger.Observe(svc, e.opts.Decide)
	e.mu.Unlock()
}

// Inspect calls fn with the config in force and the addresses in use,
// under the engine's lock; fn must not keep or change them.
func (e *Engine) Inspect(fn func(cfg *allocator.Config, usage *allocator.Usage)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e.config.cfg, e.ledger.Usage())
}

// Config returns the config in force (immutable).
func (e *Engine) Config() *allocator.Config {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.config.cfg
}

// waitingKeys returns the keys of the Services waiting for an address,
// oldest first: by creation timestamp as the cache shows it, then by
// namespace/name (one that the cache no longer shows comes first: its
// sync only forgets it).
func (e *Engine) waitingKeys() []string {
	e.mu.Lock()
	keys := make([]string, 0, len(e.waiting))
	for k := range e.waiting {
		keys = append(keys, k)
	}
	e.mu.Unlock()
	return e.oldestFirst(keys)
}

// freeLocked marks the moment the ledger frees an address: the Services
// waiting for one owe a turn from here, not from the wake-up that follows
// (a sync in between must not jump the queue, fair.go). mu is held; the
// caller calls free once it has released mu.
func (e *Engine) freeLocked() { e.newGeneration() }

// free completes freeing what the Service named key gave up (key empty:
// what a claimant gave up): the claims key held on addrs go (a shared
// address's claim moves to the next holder), and the Services waiting for
// an address are woken. mu is not held.
func (e *Engine) free(ctx context.Context, key string, addrs []netip.Addr) {
	if len(addrs) > 0 {
		e.releaseClaims(ctx, key, addrs)
	}
	e.wakeWaiting()
}

// wakeWaiting queues every Service waiting for an address, oldest first,
// so that the one that has waited longest gets the address that freed up:
// a queue that hands keys out in the order they were added (the
// simulator's; the controller's with one worker) serves them in that order,
// and a new generation makes the syncs keep to it whatever the order they
// come in (fair.go).
func (e *Engine) wakeWaiting() {
	e.mu.Lock()
	e.newGeneration()
	e.mu.Unlock()
	for _, k := range e.waitingKeys() {
		e.wake(k)
	}
}

func (e *Engine) observe(o Outcome) {
	if e.observer != nil {
		e.observer.Observe(o)
	}
}

// refused reports whether err says that the API server turned a write
// down before it could take effect. Other errors (time-outs, server
// errors, a dropped connection) leave its outcome unknown.
func refused(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsInvalid(err) ||
		apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsMethodNotSupported(err) ||
		apierrors.IsRequestEntityTooLargeError(err) || apierrors.IsNotAcceptable(err) || apierrors.IsUnsupportedMediaType(err)
}

// FailureReason returns the allocator's reason for a decision's error
// (InvalidRequest for a malformed field).
func FailureReason(err error) string {
	var ae *allocator.Error
	if errors.As(err, &ae) {
		return string(ae.Reason)
	}
	return string(allocator.ReasonInvalidRequest)
}
