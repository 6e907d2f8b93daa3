package sim

import (
	"slices"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// replica is one simulated controller process: an informer cache, a work
// queue, and the ledger, running the controller's decision code.
type replica struct {
	id      int
	cache   *cache
	ledger  *decide.Ledger
	queue   []string
	queued  map[string]bool
	waiting map[string]bool
	// seen skips Events a Service's last decision recorded already, as
	// the controller does.
	seen *decide.EventMemory
	// noLedger decides from the cache alone (the classic bug), for tests.
	noLedger bool
}

func newReplica(id int, c *cluster, cfg *allocator.Config, opts decide.Options, noLedger bool) *replica {
	r := &replica{id: id, cache: newCache(), queued: map[string]bool{}, waiting: map[string]bool{},
		seen: decide.NewEventMemory(), noLedger: noLedger}
	// A starting controller lists everything (a fresh, consistent view),
	// rebuilds its ledger from the Services, and queues every key.
	r.cache.sync(c)
	usage, _ := decide.Rebuild(cfg, r.cache.list(), opts)
	r.ledger = decide.NewLedger(usage)
	for _, k := range sortedKeys(r.cache.services) {
		r.enqueue(k)
	}
	return r
}

// newReplica starts the controller process named controller-id.
func (s *simulator) newReplica(id int) *replica {
	return newReplica(id, s.cluster, s.cfg, s.dopts, s.opts.NoLedger)
}

// scale runs n replicas. Scaling down keeps the leader, whatever its id: a
// stopped replica's cache and ledger are stale, and only a hand-over (which
// rebuilds them) may make another one the leader. Scaling up starts
// standbys with the lowest free ids.
func (s *simulator) scale(n int) {
	if n < len(s.replicas) {
		keep := []*replica{s.replicas[s.leader]}
		for i, r := range s.replicas {
			if len(keep) < n && i != s.leader {
				keep = append(keep, r)
			}
		}
		slices.SortFunc(keep, func(a, b *replica) int { return a.id - b.id })
		leader := s.replicas[s.leader]
		s.replicas = keep
		s.leader = slices.Index(keep, leader)
		return
	}
	for len(s.replicas) < n {
		id := 0
		for slices.ContainsFunc(s.replicas, func(r *replica) bool { return r.id == id }) {
			id++
		}
		s.replicas = append(s.replicas, s.newReplica(id))
	}
	leader := s.replicas[s.leader]
	slices.SortFunc(s.replicas, func(a, b *replica) int { return a.id - b.id })
	s.leader = slices.Index(s.replicas, leader)
}

// observe lets the ledger reserve what a Service the cache just showed
// carries, as the controller's informer event handler does.
func (r *replica) observe(key string) {
	if svc, ok := r.cache.services[key]; ok && !r.noLedger {
		r.ledger.Observe(svc)
	}
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

func (r *replica) wake() {
	for _, k := range sortedKeys(r.waiting) {
		r.enqueue(k)
	}
}
