package sim

import (
	"fmt"
	"io"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
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
