package sim

import (
	"testing"
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
	p, err := MakePlan(svcs, oldData, newData, sc.ControllerOptions())
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
