package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// Options change how a scenario runs.
type Options struct {
	// Seed overrides the scenario's seed when not zero.
	Seed int64
	// Flaws run a deliberately broken controller, only for showing that
	// the model finds the bugs that follow (the zero value is the real
	// controller).
	Flaws decide.Flaws
	// NoClaims runs the controllers without address claims, only for
	// showing that two active controllers then give one address to two
	// Services.
	NoClaims bool
	// CheckOnlyAtEnd skips the per-step invariant checks that are not
	// incremental (the quiet checks), for very large generated runs.
	CheckOnlyAtEnd bool
	// MaxWork bounds the controller's work items per settle (default
	// 100 + 20 per Service).
	MaxWork int
}

// Row is one line of the trace.
type Row struct {
	Step int
	// Actor is "user", "controller-N" or "expect".
	Actor   string
	What    string
	Service string
	// Addresses the Service carries after the row, comma-separated.
	Addresses string
	// Detail is what a user's step set: the config data, the lag, the
	// leader.
	Detail string
	// Reason and Message of the Event recorded; a Message alone is a note
	// of the simulator's (an injected conflict).
	Reason  string
	Message string
}

// Result is the outcome of a run.
type Result struct {
	Scenario string
	Seed     int64
	Rows     []Row
	// Writes counts the controller's successful writes; Allocations those
	// that gave a Service new addresses.
	Writes      int
	Allocations int
	Services    int
	// Failure is the first failed expect or broken invariant, or nil.
	Failure error
}

// ExpectError is a failed expect step.
type ExpectError struct {
	Step    int
	Service string
	Message string
}

// Error implements error.
func (e *ExpectError) Error() string {
	return fmt.Sprintf("step %d: expect %s: %s", e.Step, e.Service, e.Message)
}

// InvariantError is a broken invariant: it names the step, the seed and
// the Services involved.
type InvariantError struct {
	Step     int
	Seed     int64
	Services []string
	Message  string
}

// Error implements error.
func (e *InvariantError) Error() string {
	return fmt.Sprintf("step %d (seed %d): invariant broken: %s [%s]", e.Step, e.Seed, e.Message, strings.Join(e.Services, ", "))
}

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
	// resending is set while a write of unknown outcome is sent again.
	resending bool
	// landedLost is the Service a write stored whose answer was lost.
	landedLost *corev1.Service
	// outcome is what the last sync ended in; broken, an invariant it broke.
	outcome engine.What
	broken  error
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
	if len(s.replicas) == 0 {
		return // the first replica loads it as it starts
	}
	for _, r := range s.acting() {
		if r.engine.SetConfig(s.ctx, s.configMap()) {
			for _, k := range sortedKeys(r.cache.services) {
				r.enqueue(k)
			}
		}
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

// play applies one step (its kind's play, in stepKinds), then, unless the
// step let the controller settle or was itself a work item, lets the
// leader do a seeded amount of work.
func (s *simulator) play(st Step) error {
	k, n := kindOf(&st)
	if n != 1 {
		return fmt.Errorf("step %d: a step needs exactly one of %s (found %d)", s.step, kindNames(), n)
	}
	if err := k.play(s, &st); err != nil || k.settles || k.works {
		return err
	}
	// A seeded interleaving: the controller gets 0-3 work items in.
	for n := s.rng.IntN(4); n > 0; n-- {
		if _, err := s.work(); err != nil {
			return err
		}
	}
	return nil
}

// deleteService plays delete: the Service is gone from the API server.
func (s *simulator) deleteService(key string) error {
	if _, ok := s.cluster.services[key]; !ok {
		return fmt.Errorf("step %d (delete): %s: no such Service", s.step, key)
	}
	s.cluster.store(key, nil)
	s.reindex(key)
	delete(s.events, key)
	delete(s.failed, key)
	delete(s.granted, key)
	s.add(Row{Actor: "user", What: "delete", Service: key})
	return nil
}

// deleteConfigMap plays delete: {configmap: true}: the ConfigMap is gone;
// the leader has no pools until a config step creates it again, and syncs
// every Service again, as the controller does.
func (s *simulator) deleteConfigMap() {
	s.add(Row{Actor: "user", What: "delete", Detail: "ConfigMap kube-system/kubevip"})
	s.data, s.cmDeleted = nil, true
	r := s.replicas[s.leader]
	if r.engine.SetConfig(s.ctx, nil) {
		for _, k := range sortedKeys(r.cache.services) {
			r.enqueue(k)
		}
	}
}

// changeConfig plays config: the data is replaced; the leader loads it.
func (s *simulator) changeConfig(data map[string]string) { s.setConfig(data) }

// restart plays restart: the leader's process starts afresh.
func (s *simulator) restart() {
	s.add(Row{Actor: "user", What: "restart"})
	s.replicas[s.leader] = s.newReplica(s.replicas[s.leader].id)
}

// setLag plays lag.
func (s *simulator) setLag(n int) {
	s.lag = n
	s.add(Row{Actor: "user", What: "lag", Detail: strconv.Itoa(s.lag)})
}

// loseAnswers plays lose.
func (s *simulator) loseAnswers(n int) {
	s.lost += n
	s.add(Row{Actor: "user", What: "lose", Detail: fmt.Sprintf("the answers to the next %d write(s)", n)})
}

// dropWrites plays drop.
func (s *simulator) dropWrites(n int) {
	s.dropped += n
	s.add(Row{Actor: "user", What: "drop", Detail: fmt.Sprintf("the next %d write(s), on their way", n)})
}

// injectConflicts plays conflict.
func (s *simulator) injectConflicts(c *Conflict) {
	n := c.writes()
	if c.Service != "" {
		s.conflictFor[c.Service] += n
	} else {
		s.conflicts += n
	}
	s.add(Row{Actor: "user", What: "conflict", Service: c.Service, Detail: fmt.Sprintf("next %d write(s)", n)})
}

// setReplicas plays replicas.
func (s *simulator) setReplicas(n int) {
	if n < 2 {
		s.active = 1
	}
	s.scale(n)
	s.add(Row{Actor: "user", What: "replicas", Detail: fmt.Sprintf("%d, leader is controller-%d", len(s.replicas), s.replicas[s.leader].id)})
}

// setActive plays active: with 2, both replicas act as leader at once (a
// stale leader that keeps writing after losing its Lease, or an old and a
// new controller side by side during an upgrade); with 1, the leader alone.
func (s *simulator) setActive(n int) error {
	if n == 2 && len(s.replicas) < 2 {
		return fmt.Errorf("step %d (active): needs replicas: 2 first", s.step)
	}
	s.active = n
	s.add(Row{Actor: "user", What: "active", Detail: fmt.Sprintf("%d controller(s) act at once", n)})
	for _, r := range s.acting() {
		// A running controller's informer has the ConfigMap in force.
		if r.engine.SetConfig(s.ctx, s.configMap()) {
			for _, k := range sortedKeys(r.cache.services) {
				r.enqueue(k)
			}
		}
	}
	return nil
}

// handover plays handover.
func (s *simulator) handover() error {
	if len(s.replicas) < 2 {
		return fmt.Errorf("step %d (handover): needs replicas: 2 first", s.step)
	}
	// The new leader builds its ledger from a fresh list after it has
	// won the Lease, as the real controller does after WaitForCacheSync;
	// the old one stops.
	s.leader = (s.leader + 1) % len(s.replicas)
	s.replicas[s.leader] = s.newReplica(s.replicas[s.leader].id)
	s.add(Row{Actor: "user", What: "handover", Detail: fmt.Sprintf("leader is controller-%d", s.replicas[s.leader].id)})
	return nil
}

// settleStep plays settle: shown, so that the step numbers do not skip.
func (s *simulator) settleStep() error {
	s.add(Row{Actor: "user", What: "settle"})
	return s.settle()
}

// expectStep plays expect, once the controller has settled.
func (s *simulator) expectStep(e *Expect) error {
	if err := s.settle(); err != nil {
		return err
	}
	if !s.opts.CheckOnlyAtEnd {
		if err := s.checkQuiet(); err != nil {
			return err
		}
	}
	return s.expect(e)
}

func formatData(d map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(d) {
		parts = append(parts, k+"="+d[k])
	}
	return strings.Join(parts, " ")
}

func (s *simulator) create(spec *ServiceSpec) error {
	ns, name, _ := splitRef(spec.Service)
	if _, ok := s.cluster.services[spec.Service]; ok {
		return fmt.Errorf("step %d (create): %s: already exists", s.step, spec.Service)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	s.cluster.created++
	svc.CreationTimestamp = metav1.Unix(s.cluster.created, 0)
	applySpec(svc, spec)
	s.cluster.store(spec.Service, svc)
	s.reindex(spec.Service)
	s.add(Row{Actor: "user", What: "create", Service: spec.Service})
	return nil
}

func (s *simulator) update(spec *ServiceSpec) error {
	cur, ok := s.cluster.services[spec.Service]
	if !ok {
		return fmt.Errorf("step %d (update): %s: no such Service", s.step, spec.Service)
	}
	svc := cur.DeepCopy()
	applySpec(svc, spec)
	// As the API server: a LoadBalancer's class may not change once set,
	// and other types have none (it is cleared when the type changes;
	// spec.loadBalancerIP is not).
	wasLB, isLB := cur.Spec.Type == corev1.ServiceTypeLoadBalancer, svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	if wasLB && isLB && className(cur) != className(svc) {
		return fmt.Errorf("step %d (update): %s: loadBalancerClass %q: may not change once set (the API server refuses it); change the type away from LoadBalancer first",
			s.step, spec.Service, className(svc))
	}
	if !isLB {
		svc.Spec.LoadBalancerClass = nil // cleared by the API server; loadBalancerIP is kept
	}
	s.cluster.store(spec.Service, svc)
	delete(s.failed, spec.Service)
	s.reindex(spec.Service)
	s.add(Row{Actor: "user", What: "update", Service: spec.Service})
	return nil
}

// className returns svc's loadBalancerClass, or "".
func className(svc *corev1.Service) string {
	if svc.Spec.LoadBalancerClass == nil {
		return ""
	}
	return *svc.Spec.LoadBalancerClass
}

// applySpec sets the fields spec gives.
func applySpec(svc *corev1.Service, spec *ServiceSpec) {
	if spec.Type != "" {
		svc.Spec.Type = corev1.ServiceType(spec.Type)
	}
	if spec.Ports != nil {
		svc.Spec.Ports = nil
		for _, p := range spec.Ports {
			pp, _ := allocator.ParsePort(p)
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Port: pp.Number, Protocol: corev1.Protocol(pp.Protocol)})
		}
	}
	if spec.IPFamilyPolicy != "" {
		p := corev1.IPFamilyPolicy(spec.IPFamilyPolicy)
		svc.Spec.IPFamilyPolicy = &p
	}
	if spec.IPFamilies != nil {
		svc.Spec.IPFamilies = nil
		for _, f := range spec.IPFamilies {
			svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, corev1.IPFamily(f))
		}
	}
	if spec.LoadBalancerIP != nil {
		svc.Spec.LoadBalancerIP = *spec.LoadBalancerIP
	}
	if spec.LoadBalancerClass != nil {
		if *spec.LoadBalancerClass == "" {
			svc.Spec.LoadBalancerClass = nil
		} else {
			c := *spec.LoadBalancerClass
			svc.Spec.LoadBalancerClass = &c
		}
	}
	if spec.Ingress != nil {
		svc.Status.LoadBalancer.Ingress = nil
		for _, ip := range spec.Ingress {
			svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
	}
	for k, v := range spec.Annotations {
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		if v == "" {
			delete(svc.Annotations, k)
		} else {
			svc.Annotations[k] = v
		}
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
