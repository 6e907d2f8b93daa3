package sim

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// PlanLine says what a new ConfigMap would do to one Service.
type PlanLine struct {
	Service string
	// Outcome is "keep", "keep, adopted" (from the status or another
	// tool's request annotation), "keep, outside pool", "keep, anycast" (an
	// IPv6 Subnet-Router anycast address it asked for), "move" (it asks for
	// an address other than the one it is served on), "conflict", "get" or
	// "wait".
	Outcome string
	Before  string
	After   string
	Detail  string
}

// PoolLine gives one pool's counts under the new ConfigMap.
type PoolLine struct {
	Pool, Family     string
	Size, Used, Free string
}

// Plan is the result of applying a new ConfigMap, computed without
// changing anything.
type Plan struct {
	// ConfigErrors say what is wrong with the new ConfigMap, one per
	// malformed key; MalformedKeys are those keys, sorted.
	ConfigErrors  []string
	MalformedKeys []string
	// UnknownKeys say which keys the controller would ignore (the message
	// of their UnknownConfigKey Events); Notices, which CIDRs have host
	// bits and what they are read as (ConfigNotice).
	UnknownKeys []string
	Notices     []string
	Services    []PlanLine
	Pools       []PoolLine
}

// MakePlan says what would change if newData replaced the ConfigMap that
// currently holds oldData: which Services keep their address (inside or
// outside their pool), which would get one, which would wait, and the free
// counts per pool. It runs the controller's decision code on copies.
func MakePlan(services []*corev1.Service, oldData, newData map[string]string, o decide.Options) *Plan {
	oldCfg, _ := allocator.Parse(oldData, nil)
	newCfg, err := allocator.Parse(newData, oldCfg)
	p := &Plan{}
	if err != nil {
		errs := []error{err}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			errs = joined.Unwrap()
		}
		for _, e := range errs {
			p.ConfigErrors = append(p.ConfigErrors, e.Error())
			var ke *allocator.KeyError
			if errors.As(e, &ke) && !slices.Contains(p.MalformedKeys, ke.Key) {
				p.MalformedKeys = append(p.MalformedKeys, ke.Key)
			}
		}
		slices.Sort(p.MalformedKeys)
	}
	for _, n := range newCfg.Notices() {
		if n.Kind == allocator.NoticeUnknownKey {
			p.UnknownKeys = append(p.UnknownKeys, n.String())
		} else {
			p.Notices = append(p.Notices, n.String())
		}
	}
	usage, _ := decide.Rebuild(newCfg, services, o)
	// Services with an address first (they keep it), then the waiting ones
	// in creation order, as the controller would take them.
	var waiting []*corev1.Service
	for _, svc := range services {
		if !decide.Managed(svc, o) {
			continue
		}
		as, src, _ := decide.Addresses(svc)
		served := decide.StatusAddresses(svc)
		if len(as) == 0 && len(served) == 0 {
			waiting = append(waiting, svc)
			continue
		}
		d := decide.Decide(newCfg, usage, svc, o)
		// What it is served on now: its status (another tool, or kube-vip),
		// else what it carries.
		before := decide.JoinAddrs(as)
		if len(served) > 0 {
			before = decide.JoinAddrs(served)
		}
		after := decide.JoinAddrs(d.Holding.Addrs)
		line := PlanLine{Service: decide.Key(svc), Before: before, After: after, Outcome: "keep"}
		switch {
		case after != before:
			line.Outcome = "move"
			line.Detail = fmt.Sprintf("it asks for %s in %s", after, src)
		case d.Action == decide.Write && src != "annotation "+decide.AnnotationLoadBalancerIPs:
			line.Outcome = "keep, adopted"
			if src == "" {
				src = "status.loadBalancer.ingress"
			}
			line.Detail = "from " + src
		}
		for _, e := range d.Events {
			if e.Reason == decide.ReasonAddressOutsidePool {
				line.Outcome, line.Detail = line.Outcome+", outside pool", e.Message
				if !strings.Contains(e.Message, " is outside ") {
					line.Outcome = "keep, anycast" // in the pool, but never handed out automatically
				}
			}
			if e.Reason == decide.ReasonAllocationFailed && d.Err != nil {
				line.Outcome, line.After, line.Detail = "conflict", "", e.Message
			}
		}
		if d.Action == decide.Write || d.Action == decide.Hold {
			d.Apply(usage, decide.Key(svc))
		}
		p.Services = append(p.Services, line)
	}
	// Oldest first, as the controller's engine serves the waiting (then by
	// namespace/name); services may come in any order (a scenario's are
	// sorted by name).
	slices.SortStableFunc(waiting, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(decide.Key(a), decide.Key(b))
	})
	for _, svc := range waiting {
		d := decide.Decide(newCfg, usage, svc, o)
		line := PlanLine{Service: decide.Key(svc)}
		if d.Action == decide.Write {
			d.Apply(usage, decide.Key(svc))
			line.Outcome, line.After = "get", decide.JoinAddrs(d.Holding.Addrs)
		} else {
			line.Outcome = "wait"
			if d.Err != nil {
				line.Detail = d.Err.Error()
			}
		}
		p.Services = append(p.Services, line)
	}
	for _, pool := range newCfg.Pools() {
		for _, f := range []allocator.Family{allocator.IPv4, allocator.IPv6} {
			if !pool.Has(f) {
				continue
			}
			used := usage.Used(pool, f)
			p.Pools = append(p.Pools, PoolLine{Pool: pool.Name(), Family: f.String(),
				Size: pool.Size(f).String(), Used: used.String(), Free: pool.Size(f).Sub(used).String()})
		}
	}
	return p
}

// Write prints the plan as tables.
func (p *Plan) Write(w io.Writer) error {
	for _, e := range p.ConfigErrors {
		fmt.Fprintf(w, "config error: %s\n", e)
	}
	for _, e := range p.UnknownKeys {
		fmt.Fprintf(w, "unknown key: %s\n", e)
	}
	for _, e := range p.Notices {
		fmt.Fprintf(w, "config notice: %s\n", e)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tOUTCOME\tNOW\tAFTER\tDETAIL")
	for _, l := range p.Services {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Service, l.Outcome, l.Before, l.After, l.Detail)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "POOL\tFAMILY\tSIZE\tUSED\tFREE")
	for _, l := range p.Pools {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Pool, l.Family, l.Size, l.Used, l.Free)
	}
	return tw.Flush()
}

// Services returns the Services a scenario leaves behind, and the
// ConfigMap data in force at its end, for planning against a scenario;
// plan them with the scenario's ControllerOptions.
func (sc *Scenario) Services() ([]*corev1.Service, map[string]string, error) {
	s := &Scenario{Name: sc.Name, Config: sc.Config, Seed: sc.Seed, LoadBalancerClass: sc.LoadBalancerClass}
	data := sc.Config
	for _, st := range sc.Steps {
		if st.Expect != nil {
			continue // planning reads the final state; expects are not re-checked
		}
		if st.Config != nil {
			data = st.Config
		}
		if st.Delete != nil && st.Delete.ConfigMap {
			data = nil
		}
		s.Steps = append(s.Steps, st)
	}
	_, c, err := run(s, Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("replay %s: %w", sc.Name, err)
	}
	return c.list(), data, nil
}
