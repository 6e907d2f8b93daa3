package sim

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// replica is one simulated controller process: an informer cache, a work
// queue, and the controller's own sync engine.
type replica struct {
	id     int
	cache  *cache
	engine *engine.Engine
	queue  []string
	queued map[string]bool
	// live holds the newest copy of each Service the controller read from
	// the API server itself (Live): it may be newer than its cache.
	live map[string]*corev1.Service
	// adapter is what its engine talks to.
	adapter *adapter
}

// newReplica starts the controller process named controller-id: it lists
// everything (a fresh, consistent view), rebuilds its ledger from the
// Services with the ConfigMap as it is now (without the last good values a
// predecessor kept in memory), and queues every key.
func (s *simulator) newReplica(id int) *replica {
	r := &replica{id: id, cache: newCache(), queued: map[string]bool{}, live: map[string]*corev1.Service{}}
	a := &adapter{s: s, r: r}
	r.adapter = a
	o := engine.Options{Decide: s.dopts}
	if !s.opts.NoClaims {
		o.Claims = claimStore{s}
	}
	o.LastGood = lastGoodStore{&s.cm}
	r.engine = engine.New(a, a, s.observer(a), r.enqueue, o)
	r.cache.sync(s.cluster)
	r.engine.Start(s.ctx, s.cm.kubevip(), r.cache.list()) // queues every key
	return r
}

// controllers are the simulated controller processes: the replicas (by
// id), which one leads, how many act as leader, whether they run at all,
// and the keys whose syncs asked to back off.
type controllers struct {
	replicas []*replica
	leader   int
	// active is how many replicas act as leader at once (1, or 2 for a
	// split brain).
	active int
	// stopped is set from a stop step to the next restart: no controller
	// runs.
	stopped bool
	// retry holds the keys whose sync asked to back off (BackOff or an
	// error): they are queued again once the controller is idle.
	retry []string
}

// leading returns the leader.
func (c *controllers) leading() *replica { return c.replicas[c.leader] }

// acting returns the replicas that act as leader: the leader, and with
// active: 2 the other replica too.
func (c *controllers) acting() []*replica {
	if c.active < 2 || len(c.replicas) < 2 {
		return []*replica{c.leading()}
	}
	return c.replicas
}

// restart starts the process of replica i afresh, with start.
func (c *controllers) restart(i int, start func(id int) *replica) {
	c.replicas[i] = start(c.replicas[i].id)
}

// scale runs n replicas, starting new ones with start. Scaling down keeps
// the leader, whatever its id: a stopped replica's cache and ledger are
// stale, and only a hand-over (which rebuilds them) may make another one
// the leader. Scaling up starts standbys with the lowest free ids.
func (c *controllers) scale(n int, start func(id int) *replica) {
	if n < len(c.replicas) {
		keep := []*replica{c.leading()}
		for i, r := range c.replicas {
			if len(keep) < n && i != c.leader {
				keep = append(keep, r)
			}
		}
		slices.SortFunc(keep, func(a, b *replica) int { return a.id - b.id })
		leader := c.leading()
		c.replicas = keep
		c.leader = slices.Index(keep, leader)
		return
	}
	for len(c.replicas) < n {
		id := 0
		for slices.ContainsFunc(c.replicas, func(r *replica) bool { return r.id == id }) {
			id++
		}
		c.replicas = append(c.replicas, start(id))
	}
	leader := c.leading()
	slices.SortFunc(c.replicas, func(a, b *replica) int { return a.id - b.id })
	c.leader = slices.Index(c.replicas, leader)
}

// observe lets the engine reserve what a Service the cache just showed is
// served on, as the controller's informer event handler does.
func (r *replica) observe(key string) {
	if svc, ok := r.cache.services[key]; ok {
		r.engine.Observe(svc)
	}
}

// deliver shows r's cache the cluster's writes up to the log position upTo
// (at most all of them), as its informer does: each Service shown is
// observed and queued. It reports whether it delivered any.
func (r *replica) deliver(c *cluster, upTo int) bool {
	did := false
	for r.cache.pos < min(upTo, len(c.log)) {
		k, _ := r.cache.advance(c)
		r.observe(k)
		r.enqueue(k)
		did = true
	}
	return did
}

func (r *replica) enqueue(key string) {
	if !r.queued[key] {
		r.queued[key] = true
		r.queue = append(r.queue, key)
	}
}

func (r *replica) pop() (string, bool) {
	if len(r.queue) == 0 {
		return "", false
	}
	k := r.queue[0]
	r.queue = r.queue[1:]
	delete(r.queued, k)
	return k, true
}

// adapter is a replica's engine.Cluster (its cache, and the simulated API
// server with the hazards a scenario injects), its engine.Recorder and its
// engine.Observer (the trace and the invariants).
type adapter struct {
	s *simulator
	r *replica
	// broke, while process runs a sync, is told the first invariant the
	// sync's writes broke; nil between syncs.
	broke func(error)
}

// Cached implements engine.Cluster.
func (a *adapter) Cached(key string) (*corev1.Service, bool) {
	svc, ok := a.r.cache.services[key]
	return svc, ok
}

// List implements engine.Cluster.
func (a *adapter) List() []*corev1.Service { return a.r.cache.list() }

// servicesResource names Services in the API errors the simulated API
// server returns.
var servicesResource = schema.GroupResource{Resource: "services"}

// The causes of the simulated API server's conflicts.
var (
	errInjected = errors.New("injected by the scenario")
	errStale    = errors.New("the object has been modified")
)

// Live implements engine.Cluster.
func (a *adapter) Live(_ context.Context, key string) (*corev1.Service, error) {
	svc, ok := a.s.cluster.services[key]
	if !ok {
		delete(a.r.live, key)
		return nil, apierrors.NewNotFound(servicesResource, key)
	}
	a.r.live[key] = svc
	return svc, nil
}

// Patch implements engine.Cluster, with the hazards the scenario injects:
// conflicts, writes lost on their way, answers lost on the way back.
func (a *adapter) Patch(_ context.Context, from, to *corev1.Service) (*corev1.Service, error) {
	s := a.s
	key := decide.Key(from)
	switch {
	case s.faults.conflict(key):
		s.add(Row{Actor: a.actor(), What: "conflict", Service: key, Message: "injected 409"})
		return nil, apierrors.NewConflict(servicesResource, key, errInjected)
	case s.faults.drop():
		// Lost on its way: it never lands, the controller hears a
		// time-out and cannot tell it from a lost answer.
		s.add(Row{Actor: a.actor(), What: "dropped", Service: key, Message: "the write was lost on its way"})
		return nil, apierrors.NewTimeoutError("the write was lost on its way", 1)
	}
	stored, ok := s.cluster.update(to)
	if !ok {
		s.add(Row{Actor: a.actor(), What: "conflict", Service: key, Message: "stale resourceVersion"})
		// The watch event of the change that made the write fail comes
		// in before the 409 does: the informer catches up.
		a.r.deliver(s.cluster, len(s.cluster.log))
		return nil, apierrors.NewConflict(servicesResource, key, errStale)
	}
	if s.faults.lose() {
		// It landed, but the controller hears a time-out.
		return nil, &lostAnswer{error: apierrors.NewTimeoutError("the answer was lost", 1), stored: stored}
	}
	return stored, nil
}

// lostAnswer is the time-out the controller hears for a write that landed
// all the same; it carries what the API server stored, for the trace and
// the checks (the engine cannot tell it from any other time-out).
type lostAnswer struct {
	error
	stored *corev1.Service
}

// Unwrap returns the time-out.
func (l *lostAnswer) Unwrap() error { return l.error }

// Event implements engine.Recorder: the ConfigMap's Events become rows,
// their Detail the key; a Service's are shown with the outcome the
// Observer is told.
func (a *adapter) Event(obj runtime.Object, _, reason, message string) {
	if _, ok := obj.(*corev1.ConfigMap); ok {
		a.s.add(Row{Actor: "controller", What: "config", Detail: a.s.cm.keyOf[message], Reason: reason, Message: message})
	}
}

// ConfigLoaded implements engine.Observer: it learns which key each
// message names.
func (a *adapter) ConfigLoaded(errs []*allocator.KeyError) {
	a.s.cm.keyOf = map[string]string{}
	for _, ke := range errs {
		a.s.cm.keyOf[ke.Error()] = ke.Key
	}
}

// ConfigNotices implements engine.NoticeObserver: it learns which key each
// notice names.
func (a *adapter) ConfigNotices(notices []allocator.Notice) {
	for _, n := range notices {
		a.s.cm.keyOf[n.String()] = n.Key
	}
}

func (a *adapter) actor() string { return "controller-" + strconv.Itoa(a.r.id) }

// claimStore is the simulated API server's address claims (IPAddress
// objects), shared by every replica: Create refuses a second claim of an
// address, as the API server does. The controllers read it live (their
// claim caches never lag), and every replica hears of a claim that goes.
type claimStore struct{ s *simulator }

var ipAddresses = schema.GroupResource{Group: "networking.k8s.io", Resource: "ipaddresses"}

// Get implements engine.Claims.
func (c claimStore) Get(a netip.Addr) (engine.Claim, bool) {
	cl, ok := c.s.cluster.claims[a]
	return cl, ok
}

// List implements engine.Claims.
func (c claimStore) List() []engine.Claim {
	out := make([]engine.Claim, 0, len(c.s.cluster.claims))
	for _, cl := range c.s.cluster.claims {
		out = append(out, cl)
	}
	slices.SortFunc(out, func(a, b engine.Claim) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Naming implements engine.Claims.
func (c claimStore) Naming(key string) []engine.Claim {
	var out []engine.Claim
	for _, cl := range c.List() {
		if cl.Ours() && (cl.Owner == key || slices.Contains(cl.Sharers, key)) {
			out = append(out, cl)
		}
	}
	return out
}

// Create implements engine.Claims.
func (c claimStore) Create(_ context.Context, cl engine.Claim) (engine.Claim, error) {
	if cur, ok := c.s.cluster.claims[cl.Addr]; ok {
		return cur, apierrors.NewAlreadyExists(ipAddresses, cl.Addr.String())
	}
	c.s.cluster.claimSeq++
	// Created now: a run lasts far less than the grace period, so no claim
	// is ever old enough to be taken over as stale (the simulator runs no
	// repair either), as none is in the seconds a write takes. The UIDs
	// are stored as the annotation would keep them (those of Services the
	// claim names).
	made := engine.Claim{Addr: cl.Addr, Owner: cl.Owner, Sharers: slices.Clone(cl.Sharers), Manager: engine.ManagedBy,
		ID: strconv.Itoa(c.s.cluster.claimSeq), Created: time.Now()}
	for _, h := range append([]string{cl.Owner}, cl.Sharers...) {
		if uid := cl.UIDs[h]; uid != "" {
			if made.UIDs == nil {
				made.UIDs = map[string]string{}
			}
			made.UIDs[h] = uid
		}
	}
	c.s.cluster.claims[cl.Addr] = made
	return made, nil
}

// Delete implements engine.Claims: only the claim it names (its ID, when
// given).
func (c claimStore) Delete(_ context.Context, cl engine.Claim) error {
	cur, ok := c.s.cluster.claims[cl.Addr]
	if !ok {
		return apierrors.NewNotFound(ipAddresses, cl.Addr.String())
	}
	if cl.ID != "" && cur.ID != cl.ID {
		return apierrors.NewConflict(ipAddresses, cl.Addr.String(), errStale)
	}
	delete(c.s.cluster.claims, cl.Addr)
	for _, r := range c.s.ctl.replicas {
		r.engine.ClaimGone(cur)
	}
	return nil
}
