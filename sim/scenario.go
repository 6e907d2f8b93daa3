package sim

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// Scenario is a story told to the simulated cluster: an initial ConfigMap
// and ordered steps. It is the user-facing YAML format documented in the
// README.
type Scenario struct {
	// Name is for reports; Load sets it to the file name when empty.
	Name string `json:"name,omitempty"`
	// Config is the kubevip ConfigMap's data, exactly as users write it.
	Config map[string]string `json:"config,omitempty"`
	// Seed drives the interleaving of controller work and steps; 0 means 1.
	Seed int64 `json:"seed,omitempty"`
	// Options of the simulated controller.
	LoadBalancerClass string `json:"loadBalancerClass,omitempty"`
	Steps             []Step `json:"steps"`
}

// Step is one step; exactly one field is set.
type Step struct {
	Create   *ServiceSpec      `json:"create,omitempty"`
	Update   *ServiceSpec      `json:"update,omitempty"`
	Delete   *Ref              `json:"delete,omitempty"`
	Config   map[string]string `json:"config,omitempty"`
	Restart  *struct{}         `json:"restart,omitempty"`
	Lag      *int              `json:"lag,omitempty"`
	Conflict *Conflict         `json:"conflict,omitempty"`
	Replicas *int              `json:"replicas,omitempty"`
	Handover *struct{}         `json:"handover,omitempty"`
	Settle   *struct{}         `json:"settle,omitempty"`
	Expect   *Expect           `json:"expect,omitempty"`
}

// Ref names a Service as namespace/name.
type Ref struct {
	Service string `json:"service"`
}

// ServiceSpec creates a Service or changes one. In an update, only the
// fields given change (annotations are merged; an empty value removes one).
type ServiceSpec struct {
	Service           string            `json:"service"`
	Type              string            `json:"type,omitempty"`
	Ports             []string          `json:"ports,omitempty"`
	IPFamilyPolicy    string            `json:"ipFamilyPolicy,omitempty"`
	IPFamilies        []string          `json:"ipFamilies,omitempty"`
	LoadBalancerIP    *string           `json:"loadBalancerIP,omitempty"`
	LoadBalancerClass *string           `json:"loadBalancerClass,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
}

// Conflict makes the controller's next writes fail with a conflict (409):
// Count of them, or the next one of Service.
type Conflict struct {
	Count   int    `json:"count,omitempty"`
	Service string `json:"service,omitempty"`
}

// Expect is checked once the controller has settled.
type Expect struct {
	Service string `json:"service"`
	// Addresses the Service must carry, in order.
	Addresses []string `json:"addresses,omitempty"`
	// Event is a reason that must have been recorded on the Service.
	Event string `json:"event,omitempty"`
	// NoAddress: the Service must carry no address.
	NoAddress bool `json:"noAddress,omitempty"`
}

// Kind returns the step's kind, as written in YAML.
func (s Step) Kind() string {
	switch {
	case s.Create != nil:
		return "create"
	case s.Update != nil:
		return "update"
	case s.Delete != nil:
		return "delete"
	case s.Config != nil:
		return "config"
	case s.Restart != nil:
		return "restart"
	case s.Lag != nil:
		return "lag"
	case s.Conflict != nil:
		return "conflict"
	case s.Replicas != nil:
		return "replicas"
	case s.Handover != nil:
		return "handover"
	case s.Settle != nil:
		return "settle"
	case s.Expect != nil:
		return "expect"
	}
	return ""
}

func (s Step) count() int {
	n := 0
	for _, set := range []bool{s.Create != nil, s.Update != nil, s.Delete != nil, s.Config != nil, s.Restart != nil,
		s.Lag != nil, s.Conflict != nil, s.Replicas != nil, s.Handover != nil, s.Settle != nil, s.Expect != nil} {
		if set {
			n++
		}
	}
	return n
}

// ParseScenario reads a scenario from YAML, strictly: unknown fields and
// malformed values are errors that name the step and the field.
func ParseScenario(data []byte) (*Scenario, error) {
	var sc Scenario
	if err := yaml.UnmarshalStrict(data, &sc); err != nil {
		return nil, fmt.Errorf("parse scenario: %w", err)
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// Validate checks every step.
func (sc *Scenario) Validate() error {
	if len(bytes.TrimSpace([]byte(sc.Name))) > 200 {
		return errors.New("name: longer than 200 characters")
	}
	for i, st := range sc.Steps {
		if err := st.validate(); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, st.Kind(), err)
		}
	}
	return nil
}

func (s Step) validate() error {
	if s.count() != 1 {
		return fmt.Errorf("a step needs exactly one of create, update, delete, config, restart, lag, conflict, replicas, handover, settle, expect (found %d)", s.count())
	}
	switch {
	case s.Create != nil:
		return s.Create.validate(true)
	case s.Update != nil:
		return s.Update.validate(false)
	case s.Delete != nil:
		_, _, err := splitRef(s.Delete.Service)
		return err
	case s.Lag != nil:
		if *s.Lag < 0 || *s.Lag > 1000 {
			return fmt.Errorf("lag %d: must be 0-1000", *s.Lag)
		}
	case s.Replicas != nil:
		if *s.Replicas < 1 || *s.Replicas > 2 {
			return fmt.Errorf("replicas %d: must be 1 or 2", *s.Replicas)
		}
	case s.Conflict != nil:
		if s.Conflict.Count < 0 || s.Conflict.Count > 1000 {
			return fmt.Errorf("conflict count %d: must be 0-1000", s.Conflict.Count)
		}
		if s.Conflict.Service != "" {
			_, _, err := splitRef(s.Conflict.Service)
			return err
		}
		if s.Conflict.Count == 0 {
			return errors.New("conflict: give count or service")
		}
	case s.Expect != nil:
		if _, _, err := splitRef(s.Expect.Service); err != nil {
			return err
		}
		for _, a := range s.Expect.Addresses {
			if _, err := netip.ParseAddr(a); err != nil {
				return fmt.Errorf("expect addresses: %q is not an IP address", a)
			}
		}
		set := 0
		for _, b := range []bool{len(s.Expect.Addresses) > 0, s.Expect.Event != "", s.Expect.NoAddress} {
			if b {
				set++
			}
		}
		if set == 0 {
			return errors.New("expect: give addresses, event or noAddress")
		}
		if len(s.Expect.Addresses) > 0 && s.Expect.NoAddress {
			return errors.New("expect: addresses and noAddress contradict")
		}
	}
	return nil
}

func (s *ServiceSpec) validate(create bool) error {
	if _, _, err := splitRef(s.Service); err != nil {
		return err
	}
	switch corev1.ServiceType(s.Type) {
	case "", corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
	default:
		return fmt.Errorf("type %q: must be LoadBalancer, ClusterIP or NodePort", s.Type)
	}
	for _, p := range s.Ports {
		if _, err := allocator.ParsePort(p); err != nil {
			return fmt.Errorf("ports: %w", err)
		}
	}
	switch allocator.FamilyPolicy(s.IPFamilyPolicy) {
	case "", allocator.SingleStack, allocator.PreferDualStack, allocator.RequireDualStack:
	default:
		return fmt.Errorf("ipFamilyPolicy %q: must be SingleStack, PreferDualStack or RequireDualStack", s.IPFamilyPolicy)
	}
	for _, f := range s.IPFamilies {
		if f != string(corev1.IPv4Protocol) && f != string(corev1.IPv6Protocol) {
			return fmt.Errorf("ipFamilies: %q must be IPv4 or IPv6", f)
		}
	}
	if len(s.IPFamilies) > 2 || (len(s.IPFamilies) == 2 && s.IPFamilies[0] == s.IPFamilies[1]) {
		return fmt.Errorf("ipFamilies %v: at most one of each", s.IPFamilies)
	}
	if s.LoadBalancerIP != nil && *s.LoadBalancerIP != "" {
		if _, err := netip.ParseAddr(*s.LoadBalancerIP); err != nil {
			return fmt.Errorf("loadBalancerIP %q: not an IP address", *s.LoadBalancerIP)
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
