package sim

import (
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
	// lastEvent is, per Service, the last Event recorded, as the
	// controller keeps it to skip repeating an identical one.
	lastEvent map[string]string
	// noLedger decides from the cache alone (the classic bug), for tests.
	noLedger bool
}

func newReplica(id int, c *cluster, cfg *allocator.Config, opts decide.Options, noLedger bool) *replica {
	r := &replica{id: id, cache: newCache(), queued: map[string]bool{}, waiting: map[string]bool{},
		lastEvent: map[string]string{}, noLedger: noLedger}
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

// fresh reports whether an Event differs from the last one recorded for
// key, and remembers it. As the controller, a write always records its
// Events (force); a hold or a failure only when they changed.
func (r *replica) fresh(key string, e decide.Event, force bool) bool {
	sig := e.Reason + "\x00" + e.Message
	dup := r.lastEvent[key] == sig
	r.lastEvent[key] = sig
	return force || !dup
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
