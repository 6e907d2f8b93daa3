package sim

import (
	"maps"
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// plan says which waiting Service a new ConfigMap would serve; replay runs
// the controller's engine. Both must serve the oldest first: here zeta was
// created before alpha, so by name alpha would come first.
func TestPlanAndReplayAgreeOnOldestFirst(t *testing.T) {
	const before = `
config:
  cidr-other: 10.9.0.0/32
steps:
  - create: {service: default/zeta}
  - create: {service: default/alpha}
  - expect: {service: default/zeta, noAddress: true}
  - expect: {service: default/alpha, noAddress: true}
`
	newData := map[string]string{"range-global": "10.5.0.1-10.5.0.1"}
	sc, err := ParseScenario([]byte(before))
	if err != nil {
		t.Fatal(err)
	}
	svcs, oldData, err := sc.Services()
	if err != nil {
		t.Fatal(err)
	}
	p, err := MakePlan(svcs, nil, oldData, newData, sc.ControllerOptions())
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]string{}
	for _, l := range p.Services {
		planned[l.Service] = l.Outcome + " " + l.After
	}
	if planned["default/zeta"] != "get 10.5.0.1" || planned["default/alpha"] != "wait " {
		t.Fatalf("plan: %q, want zeta (the older) to get 10.5.0.1 and alpha to wait", planned)
	}

	sc.Steps = append(sc.Steps, Step{Config: newData}, Step{Settle: &struct{}{}})
	_, c, err := run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, svc := range c.list() {
		got[svc.Namespace+"/"+svc.Name] = svc.Annotations["kube-vip.io/loadbalancerIPs"]
	}
	if got["default/zeta"] != "10.5.0.1" || got["default/alpha"] != "" {
		t.Fatalf("replay: %q, want zeta (the older) to get 10.5.0.1 and alpha to wait", got)
	}
}

// plan runs the controller's engine: what it says each Service ends up
// with is what replay's controller gives it, in the cases where a plain
// Decide pass over the Services (plan's former way) says otherwise.
func TestPlanAgreesWithReplay(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before is a scenario; plan reads the Services and the ConfigMap
		// it leaves. replay plays before, then then.
		before, then string
		newData      map[string]string
		// want is what plan says a Service ends up with ("" none).
		want map[string]string
	}{
		{
			// Changed while no controller ran: the engine releases a's
			// address, so b gets it. A Decide pass counts a as holding it.
			name: "a Service that stopped being a LoadBalancer frees its address",
			before: `
config: {range-global: 10.0.0.1-10.0.0.1}
steps:
  - create: {service: default/a, ports: [80/TCP]}
  - create: {service: default/b, ports: [80/TCP]}
  - settle: {}
  - stop: {}
  - update: {service: default/a, type: ClusterIP}
`,
			then:    "[restart: {}, settle: {}, config: {range-global: 10.0.0.1-10.0.0.2}, settle: {}]",
			newData: map[string]string{"range-global": "10.0.0.1-10.0.0.2"},
			want:    map[string]string{"default/b": "10.0.0.1"},
		},
		{
			// Both wait under the old ConfigMap; the new one has one
			// address, and the older gets it, whatever the names.
			name: "the waiting are served oldest first",
			before: `
config: {cidr-other: 10.9.0.0/32}
steps:
  - create: {service: default/zeta}
  - create: {service: default/alpha}
`,
			then:    "[restart: {}, settle: {}, config: {range-global: 10.5.0.1-10.5.0.1}, settle: {}]",
			newData: map[string]string{"range-global": "10.5.0.1-10.5.0.1"},
			want:    map[string]string{"default/zeta": "10.5.0.1", "default/alpha": ""},
		},
		{
			// No ConfigMap: plan has the controller installed with the new
			// one, starting on the Services (replay: stopped, then started
			// with it). The start rebuilds the set of Services waiting for
			// an address, so the oldest is served first, not the first by
			// name.
			name: "installed with the new ConfigMap",
			before: `
steps:
  - delete: {configmap: true}
  - create: {service: default/zeta}
  - create: {service: default/alpha}
`,
			then:    "[stop: {}, config: {range-global: 10.5.0.1-10.5.0.1}, restart: {}, settle: {}]",
			newData: map[string]string{"range-global": "10.5.0.1-10.5.0.1"},
			want:    map[string]string{"default/zeta": "10.5.0.1", "default/alpha": ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := ParseScenario([]byte(tc.before))
			if err != nil {
				t.Fatal(err)
			}
			svcs, oldData, err := sc.Services()
			if err != nil {
				t.Fatal(err)
			}
			p, err := MakePlan(svcs, nil, oldData, tc.newData, sc.ControllerOptions())
			if err != nil {
				t.Fatal(err)
			}
			planned := map[string]string{}
			for _, l := range p.Services {
				planned[l.Service] = l.After
			}
			then, err := ParseScenario([]byte("steps: " + tc.then))
			if err != nil {
				t.Fatal(err)
			}
			sc.Steps = append(sc.Steps, then.Steps...)
			_, c, err := run(sc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			replayed := map[string]string{}
			for _, svc := range c.list() {
				if _, ok := planned[decide.Key(svc)]; ok {
					replayed[decide.Key(svc)] = svc.Annotations[decide.AnnotationLoadBalancerIPs]
				}
			}
			if !maps.Equal(planned, replayed) {
				t.Errorf("plan says %q, replay gives %q", planned, replayed)
			}
			if !maps.Equal(planned, tc.want) {
				t.Errorf("plan says %q, want %q", planned, tc.want)
			}
		})
	}
}
