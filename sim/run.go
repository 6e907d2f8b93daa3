package sim

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// simulator holds one run's state: the cluster and its ConfigMaps, the
// hazards injected, the controller processes, and what the trace and the
// checks know.
type simulator struct {
	sc   *Scenario
	opts Options
	seed int64
	rng  *rand.Rand
	// ctx carries a logger that discards: the engine logs as the
	// controller does, the trace says it all.
	ctx   context.Context
	dopts decide.Options
	// cluster is the simulated API server's Services and claims, cm its
	// ConfigMaps, faults the hazards a scenario injects into it.
	cluster *cluster
	cm      configMaps
	faults  faults
	// ctl are the controller processes.
	ctl controllers
	// outcomes are what the controller's syncs left for each Service;
	// index indexes the Services by address, for the invariants.
	outcomes outcomes
	index    addrIndex
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
		rng:      rand.New(rand.NewPCG(uint64(seed), 0x6b7663702d73696d)),
		cluster:  newCluster(),
		outcomes: newOutcomes(),
		index:    newAddrIndex(),
		res:      &Result{Scenario: sc.Name, Seed: seed},
		ctx:      klog.NewContext(context.Background(), logr.Discard()),
	}
	s.dopts = sc.ControllerOptions()
	s.dopts.Flaws = o.Flaws
	s.ctl.active = 1
	s.setConfig(sc.Config)
	s.ctl.replicas = []*replica{s.newReplica(0)}
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
	s.cm.set(data)
	if len(s.ctl.replicas) == 0 || s.ctl.stopped {
		return // loaded as the controller starts
	}
	for _, r := range s.ctl.acting() {
		r.engine.SetConfig(s.ctx, s.cm.kubevip()) // wakes every Service
	}
}

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
