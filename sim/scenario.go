package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// Scenario is a story told to the simulated cluster: an initial ConfigMap
// and ordered steps. It is the user-facing YAML format documented in the
// README; ParseScenario reads it, yaml.Marshal writes it back.
type Scenario struct {
	// Name is for reports; Load sets it to the file name when empty.
	Name string `json:"name,omitempty"`
	// Config is the kubevip ConfigMap's data, exactly as users write it.
	Config map[string]string `json:"config,omitempty"`
	// Seed drives the interleaving of controller work and steps; 0 means 1.
	Seed int64 `json:"seed,omitempty"`
	// LoadBalancerClass, when set, makes the simulated controller handle
	// only Services of this class (KUBEVIP_ENABLE_LOADBALANCERCLASS).
	LoadBalancerClass string `json:"loadBalancerClass,omitempty"`
	Steps             []Step `json:"steps"`
}

// ControllerOptions returns the decision options the scenario's
// controller runs with.
func (sc *Scenario) ControllerOptions() decide.Options {
	if sc.LoadBalancerClass == "" {
		return decide.Options{}
	}
	return decide.Options{EnableLoadBalancerClass: true, LoadBalancerClass: sc.LoadBalancerClass}
}

// Step is one step; exactly one field is set. Each field is a kind of
// step, written whole (read, checked, played) in one function that
// stepKinds lists.
type Step struct {
	Create   *ServiceSpec      `json:"create,omitempty"`
	Update   *ServiceSpec      `json:"update,omitempty"`
	Delete   *Ref              `json:"delete,omitempty"`
	Config   map[string]string `json:"config,omitempty"`
	Restart  *struct{}         `json:"restart,omitempty"`
	Stop     *struct{}         `json:"stop,omitempty"`
	Lag      *int              `json:"lag,omitempty"`
	Lose     *int              `json:"lose,omitempty"`
	Drop     *int              `json:"drop,omitempty"`
	Conflict *Conflict         `json:"conflict,omitempty"`
	Replicas *int              `json:"replicas,omitempty"`
	Handover *struct{}         `json:"handover,omitempty"`
	Active   *int              `json:"active,omitempty"`
	Sync     *Ref              `json:"sync,omitempty"`
	Settle   *struct{}         `json:"settle,omitempty"`
	Expect   *Expect           `json:"expect,omitempty"`
}

// MarshalJSON writes the step as {KIND: VALUE}, so that an empty config
// (which omitempty would drop) survives a round trip.
func (s Step) MarshalJSON() ([]byte, error) {
	k, n := kindOf(&s)
	if n == 0 {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]any{k.name: k.value(&s)})
}

// Kind returns the step's kind, as written in YAML ("" for a step that
// has no value set).
func (s Step) Kind() string {
	k, _ := kindOf(&s)
	return k.name
}

// Validate checks every step.
func (sc *Scenario) Validate() error {
	if len(strings.TrimSpace(sc.Name)) > 200 {
		return errors.New("name: longer than 200 characters")
	}
	for i := range sc.Steps {
		st := &sc.Steps[i]
		k, n := kindOf(st)
		if n != 1 {
			return fmt.Errorf("step %d: a step needs exactly one of %s (found %d)", i+1, kindNames(), n)
		}
		if err := k.validate(st); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, k.name, err)
		}
	}
	return nil
}

// splitRef splits namespace/name and checks both are valid names.
func splitRef(ref string) (string, string, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		return "", "", fmt.Errorf("service %q: write it as namespace/name", ref)
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "", "", fmt.Errorf("service %q: namespace: %s", ref, errs[0])
	}
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return "", "", fmt.Errorf("service %q: name: %s", ref, errs[0])
	}
	return ns, name, nil
}
