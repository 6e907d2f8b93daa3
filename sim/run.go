package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// simulator holds one run's state.
type simulator struct {
	sc      *Scenario
	opts    Options
	seed    int64
	rng     *rand.Rand
	cluster *cluster
	// ctx carries a logger that discards: the engine logs as the
	// controller does, the trace says it all.
	ctx context.Context
	// data is the ConfigMap's data, cmVersion its resourceVersion;
	// keyOf names the key of each malformed-key message it loaded.
	data      map[string]string
	cmVersion int
	cmDeleted bool
	keyOf     map[string]string
	dopts     decide.Options
	replicas  []*replica
	leader    int
	// active is how many replicas act as leader at once (1, or 2 for a
	// split brain).
	active int
	lag    int
	// lastGood is the controller's own ConfigMap of last good values.
	lastGood map[string]string
	// stopped is set from a stop step to the next restart: no controller
	// runs.
	stopped bool
	// injected conflicts: the next n writes, or the next write of a key.
	conflicts   int
	conflictFor map[string]int
	// lost is how many of the next writes land but lose their answer;
	// dropped, how many are lost on their way and never land.
	lost, dropped int
	retry         []string
	events        map[string][]decide.Event
	failed        map[string]bool
	// granted holds, per Service, the resourceVersion of the controller's
	// last write of it.
	granted map[string]string
	// holders indexes, per address, the Services the store shows holding
	// it (annotation present, last decision not a failure).
	holders map[netip.Addr]map[string]bool
	held    map[string][]netip.Addr
	// carriers indexes, per address, every Service served on it (InUse).
	carriers map[netip.Addr]map[string]bool
	carried  map[string][]netip.Addr
	touched  map[netip.Addr]bool
	step     int
	res      *Result
}

// Run plays a scenario and returns its trace. A failed expect or a broken
// invariant stops the run and is returned as Result.Failure (and as the
// error); other errors are scenario errors.
func Run(sc *Scenario, o Options) (*Result, error) {
	res, _, err := run(sc, o)
	return res, err
}

// run plays sc and also returns the final cluster.
func run(sc *Scenario, o Options) (*Result, *cluster, error) {
	if err := sc.Validate(); err != nil {
		return nil, nil, err
	}
	s := newSimulator(sc, o)
	for i, st := range sc.Steps {
		s.step = i + 1
		if err := s.play(st); err != nil {
			return s.fail(err)
		}
	}
	if err := s.settle(); err != nil {
		return s.fail(err)
	}
	if err := s.checkQuiet(); err != nil {
		return s.fail(err)
	}
	s.res.Services = len(s.cluster.services)
	return s.res, s.cluster, nil
}

// newSimulator starts sc's controller (one replica) on an empty cluster
// with sc's starting config, as before its first step.
func newSimulator(sc *Scenario, o Options) *simulator {
	seed := sc.Seed
	if o.Seed != 0 {
		seed = o.Seed
	}
	if seed == 0 {
		seed = 1
	}
	s := &simulator{
		sc: sc, opts: o, seed: seed,
		rng:         rand.New(rand.NewPCG(uint64(seed), 0x6b7663702d73696d)),
		cluster:     newCluster(),
		conflictFor: map[string]int{},
		events:      map[string][]decide.Event{},
		failed:      map[string]bool{},
		granted:     map[string]string{},
		holders:     map[netip.Addr]map[string]bool{},
		held:        map[string][]netip.Addr{},
		carriers:    map[netip.Addr]map[string]bool{},
		carried:     map[string][]netip.Addr{},
		touched:     map[netip.Addr]bool{},
		res:         &Result{Scenario: sc.Name, Seed: seed},
		ctx:         klog.NewContext(context.Background(), logr.Discard()),
	}
	s.dopts = sc.ControllerOptions()
	s.dopts.Flaws = o.Flaws
	s.active = 1
	s.setConfig(sc.Config)
	s.replicas = []*replica{s.newReplica(0)}
	return s
}

func (s *simulator) fail(err error) (*Result, *cluster, error) {
	s.res.Failure = err
	s.res.Services = len(s.cluster.services)
	return s.res, s.cluster, err
}

// add appends a row to the trace, at the current step.
func (s *simulator) add(r Row) {
	r.Step = s.step
	s.res.Rows = append(s.res.Rows, r)
}

func (s *simulator) invariant(msg string, svcs ...string) error {
	return &InvariantError{Step: s.step, Seed: s.seed, Services: svcs, Message: msg}
}

// setConfig applies the ConfigMap data that a step sets (step 0: the
// scenario's starting config): a user's row showing it; the leader loads
// the new version, shows a row for every malformed key not shown for the
// previous version, and syncs every Service again, as the controller does.
func (s *simulator) setConfig(data map[string]string) {
	s.add(Row{Actor: "user", What: "config", Detail: formatData(data)})
	s.data = data
	s.cmVersion++
	s.cmDeleted = false
	if len(s.replicas) == 0 || s.stopped {
		return // loaded as the controller starts
	}
	for _, r := range s.acting() {
		r.engine.SetConfig(s.ctx, s.configMap()) // wakes every Service
	}
}

// acting returns the replicas that act as leader: the leader, and with
// active: 2 the other replica too.
func (s *simulator) acting() []*replica {
	if s.active < 2 || len(s.replicas) < 2 {
		return []*replica{s.replicas[s.leader]}
	}
	return s.replicas
}

// config is the config in force at the leader.
func (s *simulator) config() *allocator.Config { return s.replicas[s.leader].engine.Config() }

// settle lets the leader work until nothing is left to do, then checks the
// addresses whose holders changed: a user can make two sharing Services
// collide (by changing ports); once settled, the controller must have
// reported one of them.
func (s *simulator) settle() error {
	if err := s.work2settle(); err != nil {
		return err
	}
	return s.checkTouched()
}

func (s *simulator) work2settle() error {
	limit := s.opts.MaxWork
	if limit == 0 {
		limit = 100 + 20*len(s.cluster.services)
	}
	for i := 0; ; i++ {
		if i > limit {
			return s.invariant(fmt.Sprintf("the controller did not settle within %d work items", limit))
		}
		did, err := s.work()
		if err != nil {
			return err
		}
		if !did {
			return nil
		}
	}
}
