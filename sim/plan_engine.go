package sim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// MakePlan says what would change if newData replaced the ConfigMap that
// holds oldData now (nil: there is none, the controller is not installed
// yet): which Services keep their address (inside or outside their pool),
// which would get one, which would wait, and the counts per pool. Nothing
// is decided here: the Services and the address claims (the cluster's
// IPAddress objects; nil when it has none, or plans against a scenario)
// are loaded, as they are, into the simulator's in-memory cluster; the
// controller's own engine starts on them with oldData and settles, then
// loads newData and settles again (without oldData, it starts with
// newData); the plan is what the engine did: its writes, its decisions
// once newData was in force and the Events they carry, its ledger. So an
// address claimed by anyone but a Service of ours (the ClusterIP
// allocator, another manager) is never handed out. An error says that the
// engine broke one of the simulator's invariants on these Services, or did
// not settle.
func MakePlan(services []*corev1.Service, claims []engine.Claim, oldData, newData map[string]string, o decide.Options) (*Plan, error) {
	w := &planWatch{}
	s, err := runPlan(services, claims, oldData, newData, o, w)
	if err != nil {
		return nil, err
	}
	p := &Plan{}
	for _, ke := range w.errs {
		p.ConfigErrors = append(p.ConfigErrors, ke.Error())
		if !slices.Contains(p.MalformedKeys, ke.Key) {
			p.MalformedKeys = append(p.MalformedKeys, ke.Key)
		}
	}
	slices.Sort(p.MalformedKeys)
	for _, n := range w.notices {
		if n.Kind == allocator.NoticeUnknownKey {
			p.UnknownKeys = append(p.UnknownKeys, n.String())
		} else {
			p.Notices = append(p.Notices, n.String())
		}
	}
	// Services with an address first (in the order given), then the
	// waiting ones oldest first, the order the engine serves them in.
	var waiting []*corev1.Service
	for _, svc := range services {
		if !decide.Managed(svc, o) {
			continue
		}
		as, _, _ := decide.Addresses(svc)
		if len(as) == 0 && len(decide.StatusAddresses(svc)) == 0 {
			waiting = append(waiting, svc)
			continue
		}
		p.Services = append(p.Services, keepLine(svc, w.did(decide.Key(svc))))
	}
	slices.SortStableFunc(waiting, func(a, b *corev1.Service) int {
		return cmp.Or(a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time), strings.Compare(decide.Key(a), decide.Key(b)))
	})
	for _, svc := range waiting {
		p.Services = append(p.Services, waitLine(svc, w.did(decide.Key(svc))))
	}
	s.ctl.leading().engine.Inspect(func(cfg *allocator.Config, usage *allocator.Usage) {
		for _, pool := range cfg.Pools() {
			for _, f := range []allocator.Family{allocator.IPv4, allocator.IPv6} {
				if !pool.Has(f) {
					continue
				}
				used := usage.Used(pool, f)
				p.Pools = append(p.Pools, PoolLine{Pool: pool.Name(), Family: f.String(),
					Size: pool.Size(f).String(), Used: used.String(), Free: pool.Size(f).Sub(used).String()})
			}
		}
	})
	return p, nil
}

// runPlan loads services and claims into a simulator's in-memory cluster
// and starts one controller replica on them, so that its engine rebuilds
// its ledger from them, with w told what it does once newData is loaded.
// The claims are loaded as they are: the engine's start frees a claim of
// ours that names only Services that do not exist, as the controller's.
//
// With oldData (a controller has run with it), the engine starts with
// oldData and settles first: the Services that cannot have an address
// under it are waiting, as under a controller that has run with it, and
// are served oldest first once newData frees addresses. Then it loads
// newData and settles again. Without (oldData nil: no ConfigMap, the
// controller is being installed), it starts with newData and settles.
func runPlan(services []*corev1.Service, claims []engine.Claim, oldData, newData map[string]string, o decide.Options, w *planWatch) (*simulator, error) {
	sc := &Scenario{Name: "plan", Config: oldData}
	if oldData == nil {
		sc.Config = newData
	}
	if o.EnableLoadBalancerClass {
		sc.LoadBalancerClass = cmp.Or(o.LoadBalancerClass, decide.DefaultLoadBalancerClass)
	}
	s := newSimulator(sc, Options{Flaws: o.Flaws, watch: w})
	for _, svc := range services {
		key := decide.Key(svc)
		s.cluster.store(key, svc)
		s.reindex(key)
	}
	for _, c := range claims {
		s.cluster.claims[c.Addr] = c
	}
	w.phase = phaseOld
	if oldData == nil {
		w.phase = phaseNew
	}
	s.restart() // its ledger rebuilt from the Services
	if err := s.settle(); err != nil {
		return nil, fmt.Errorf("the controller on the Services as they are: %w", err)
	}
	if oldData != nil {
		w.phase = phaseNew
		s.changeConfig(newData)
		if err := s.settle(); err != nil {
			return nil, fmt.Errorf("the controller with the new ConfigMap: %w", err)
		}
	}
	if err := s.checkQuiet(); err != nil {
		return nil, fmt.Errorf("the controller with the new ConfigMap: %w", err)
	}
	return s, nil
}

// keepLine says what the engine did to svc, a Service that carries or is
// served on an address.
func keepLine(svc *corev1.Service, did engineDid) PlanLine {
	as, src, _ := decide.Addresses(svc)
	// What it is served on now: its status (another tool, or kube-vip),
	// else what it carries.
	before := decide.JoinAddrs(as)
	if served := decide.StatusAddresses(svc); len(served) > 0 {
		before = decide.JoinAddrs(served)
	}
	line := PlanLine{Service: decide.Key(svc), Before: before, After: before, Outcome: "keep"}
	d, ok := did.last()
	if !ok {
		return line // nothing to do: it keeps what it has
	}
	line.After = decide.JoinAddrs(d.Holding.Addrs)
	switch {
	case line.After != before:
		line.Outcome = "move"
		line.Detail = fmt.Sprintf("it asks for %s in %s", line.After, src)
	case did.wrote && src != "annotation "+decide.AnnotationLoadBalancerIPs:
		line.Outcome = "keep, adopted"
		if src == "" {
			src = "status.loadBalancer.ingress"
		}
		line.Detail = "from " + src
	}
	for _, e := range lastEvents(did.underNew, decide.ReasonAddressOutsidePool) {
		line.Outcome, line.Detail = line.Outcome+", outside pool", e.Message // one per address
		if !strings.Contains(e.Message, " is outside ") {
			line.Outcome = "keep, anycast" // in the pool, but never handed out automatically
		}
	}
	if evs := lastEvents([]decide.Decision{d}, decide.ReasonAllocationFailed); len(evs) > 0 && d.Err != nil {
		line.Outcome, line.After, line.Detail = "conflict", "", evs[len(evs)-1].Message
	}
	return line
}

// waitLine says what the engine did to svc, a Service that had no address.
func waitLine(svc *corev1.Service, did engineDid) PlanLine {
	line := PlanLine{Service: decide.Key(svc), Outcome: "wait"}
	d, ok := did.last()
	switch {
	case !ok:
	case did.wrote && len(d.Holding.Addrs) > 0:
		line.Outcome, line.After = "get", decide.JoinAddrs(d.Holding.Addrs)
	case d.Err != nil:
		line.Detail = d.Err.Error()
	}
	return line
}

// lastEvents returns the Events of the reason given of the last of ds
// that has any.
func lastEvents(ds []decide.Decision, reason string) []decide.Event {
	for i := len(ds) - 1; i >= 0; i-- {
		var evs []decide.Event
		for _, e := range ds[i].Events {
			if e.Reason == reason {
				evs = append(evs, e)
			}
		}
		if len(evs) > 0 {
			return evs
		}
	}
	return nil
}

// The phases of a plan's run that planWatch tells apart.
const (
	phaseOff = iota // the simulator starting, on no Services
	phaseOld        // the engine on the Services, with the old ConfigMap
	phaseNew        // with the new one
)

// planWatch is told what the engine does: the outcome of every sync from
// the start on the Services on, and the malformed keys and notices of the
// new ConfigMap.
type planWatch struct {
	phase    int
	outcomes map[string][]watched
	errs     []*allocator.KeyError
	notices  []allocator.Notice
}

// watched is an outcome, and whether the new ConfigMap was in force.
type watched struct {
	engine.Outcome
	underNew bool
}

// engineDid is what the engine did to one Service.
type engineDid struct {
	// underNew are its decisions acted on (a write that landed, a
	// failure, a hold) once the new ConfigMap was in force.
	underNew []decide.Decision
	// wrote: the engine wrote addresses into it (under either ConfigMap).
	wrote bool
}

// last returns the last decision acted on under the new ConfigMap.
func (d engineDid) last() (decide.Decision, bool) {
	if len(d.underNew) == 0 {
		return decide.Decision{}, false
	}
	return d.underNew[len(d.underNew)-1], true
}

// did returns what the engine did to the Service named key.
func (w *planWatch) did(key string) engineDid {
	var did engineDid
	for _, o := range w.outcomes[key] {
		switch o.What {
		case engine.Written:
			did.wrote = did.wrote || o.Decision.Action == decide.Write
		case engine.Failed, engine.Held:
		default:
			continue // a write that did not land
		}
		if o.underNew {
			did.underNew = append(did.underNew, o.Decision)
		}
	}
	return did
}

// Observe implements engine.Observer.
func (w *planWatch) Observe(o engine.Outcome) {
	if w.phase == phaseOff {
		return
	}
	if w.outcomes == nil {
		w.outcomes = map[string][]watched{}
	}
	w.outcomes[o.Key] = append(w.outcomes[o.Key], watched{Outcome: o, underNew: w.phase == phaseNew})
}

// ConfigLoaded implements engine.Observer.
func (w *planWatch) ConfigLoaded(errs []*allocator.KeyError) {
	if w.phase == phaseNew {
		w.errs = errs
	}
}

// ConfigNotices implements engine.NoticeObserver.
func (w *planWatch) ConfigNotices(notices []allocator.Notice) {
	if w.phase == phaseNew {
		w.notices = notices
	}
}

// observer returns the engine.Observer of a replica whose adapter is a:
// the adapter (the trace and the checks), then Options.watch when set.
func (s *simulator) observer(a *adapter) engine.Observer {
	if s.opts.watch == nil {
		return a
	}
	return tee{a: a, watch: s.opts.watch}
}

// tee tells an engine's outcomes to the simulator's adapter, then to a
// watch.
type tee struct {
	a     *adapter
	watch engine.Observer
}

// Observe implements engine.Observer.
func (t tee) Observe(o engine.Outcome) {
	t.a.Observe(o)
	t.watch.Observe(o)
}

// ConfigLoaded implements engine.Observer.
func (t tee) ConfigLoaded(errs []*allocator.KeyError) {
	t.a.ConfigLoaded(errs)
	t.watch.ConfigLoaded(errs)
}

// ConfigNotices implements engine.NoticeObserver.
func (t tee) ConfigNotices(notices []allocator.Notice) {
	t.a.ConfigNotices(notices)
	if no, ok := t.watch.(engine.NoticeObserver); ok {
		no.ConfigNotices(notices)
	}
}
