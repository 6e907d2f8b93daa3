package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
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

// Step is one step; exactly one field is set.
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

// Ref names a Service as namespace/name.
type Ref struct {
	Service string `json:"service,omitempty"`
	// ConfigMap, instead of a Service, names the kubevip ConfigMap
	// (delete: {configmap: true}).
	ConfigMap bool `json:"configmap,omitempty"`
}

// ServiceSpec creates a Service or changes one. In an update, only the
// fields given change (annotations are merged; an empty value removes one;
// an empty list of ports removes them all).
type ServiceSpec struct {
	Service           string            `json:"service"`
	Type              string            `json:"type,omitempty"`
	Ports             []string          `json:"ports,omitempty"`
	IPFamilyPolicy    string            `json:"ipFamilyPolicy,omitempty"`
	IPFamilies        []string          `json:"ipFamilies,omitempty"`
	LoadBalancerIP    *string           `json:"loadBalancerIP,omitempty"`
	LoadBalancerClass *string           `json:"loadBalancerClass,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	// Ingress sets status.loadBalancer.ingress: the IPs a load-balancer
	// (kube-vip, or the tool the user leaves) serves the Service on. An
	// empty, non-nil list clears it.
	Ingress []string `json:"ingress,omitempty"`
}

// MarshalJSON keeps an empty, non-nil list of ports or families (it means
// "none" in an update, where a missing one means "unchanged").
func (s ServiceSpec) MarshalJSON() ([]byte, error) {
	type plain ServiceSpec
	out := struct {
		plain
		Ports      *[]string `json:"ports,omitempty"`
		IPFamilies *[]string `json:"ipFamilies,omitempty"`
		Ingress    *[]string `json:"ingress,omitempty"`
	}{plain: plain(s)}
	if s.Ingress != nil {
		out.Ingress = &s.Ingress
	}
	if s.Ports != nil {
		out.Ports = &s.Ports
	}
	if s.IPFamilies != nil {
		out.IPFamilies = &s.IPFamilies
	}
	return json.Marshal(out)
}

// Conflict makes the controller's next writes fail with a conflict (409):
// the next Count of them (0 means 1), or, with Service, the next Count
// writes of that Service.
type Conflict struct {
	Count   int    `json:"count,omitempty"`
	Service string `json:"service,omitempty"`
}

// writes is how many writes the step makes fail.
func (c *Conflict) writes() int { return max(c.Count, 1) }

// Expect is checked once the controller has settled. It checks either a
// Service or, with ConfigMap set, the ConfigMap.
type Expect struct {
	Service string `json:"service,omitempty"`
	// ConfigMap, when set, checks the Events recorded on the ConfigMap
	// instead of a Service's: Event must be InvalidConfig (the default),
	// UnknownConfigKey or ConfigNotice.
	ConfigMap bool `json:"configmap,omitempty"`
	// Key, with ConfigMap, is the ConfigMap key the Event must be about.
	Key string `json:"key,omitempty"`
	// Addresses the Service must carry, in order.
	Addresses []string `json:"addresses,omitempty"`
	// Event is a reason that must have been recorded on the Service (or,
	// with ConfigMap, on the ConfigMap).
	Event string `json:"event,omitempty"`
	// Kind is the kind of AllocationFailed the Event must be: its message
	// starts with it (PoolExhausted, NoPool, Conflict, FamilyUnavailable or
	// InvalidRequest).
	Kind string `json:"kind,omitempty"`
	// NoAddress, when set: true, the Service must carry no address; false,
	// it must carry at least one.
	NoAddress *bool `json:"noAddress,omitempty"`
}

// failureKinds are the kinds of AllocationFailed, as its message begins.
func failureKinds() []string {
	return []string{string(allocator.ReasonExhausted), string(allocator.ReasonNoPool), string(allocator.ReasonConflict),
		string(allocator.ReasonFamilyUnavailable), string(allocator.ReasonInvalidRequest)}
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

func (c *Conflict) validate() error {
	if c.Count < 0 || c.Count > 1000 {
		return fmt.Errorf("count %d: must be 1-1000", c.Count)
	}
	if c.Service != "" {
		_, _, err := splitRef(c.Service)
		return err
	}
	return nil
}

func (e *Expect) validate() error {
	if e.ConfigMap {
		return e.validateConfigMap()
	}
	if _, _, err := splitRef(e.Service); err != nil {
		return err
	}
	if e.Key != "" {
		return fmt.Errorf("key %q: only the ConfigMap's Events are about a key (write configmap: true, event: InvalidConfig, key: KEY)", e.Key)
	}
	for _, a := range e.Addresses {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("addresses: %q is not an IP address", a)
		}
	}
	if len(e.Addresses) == 0 && e.Event == "" && e.NoAddress == nil {
		return errors.New("give addresses, event or noAddress")
	}
	if len(e.Addresses) > 0 && e.NoAddress != nil && *e.NoAddress {
		return errors.New("addresses and noAddress: true contradict")
	}
	switch e.Event {
	case "", decide.ReasonAddressAssigned, decide.ReasonAllocationFailed, decide.ReasonAddressOutsidePool, decide.ReasonAddressReleased:
	case decide.ReasonInvalidConfig, decide.ReasonUnknownConfigKey, decide.ReasonConfigNotice:
		return fmt.Errorf("event %s: that is recorded on the ConfigMap, not on a Service: write expect: {configmap: true, event: %s, key: KEY}", e.Event, e.Event)
	default:
		return fmt.Errorf("event %q: not a reason the controller records on a Service (want %s, %s, %s or %s)", e.Event,
			decide.ReasonAddressAssigned, decide.ReasonAllocationFailed, decide.ReasonAddressOutsidePool, decide.ReasonAddressReleased)
	}
	if e.Kind == "" {
		return nil
	}
	if e.Event != decide.ReasonAllocationFailed {
		return fmt.Errorf("kind %s: a kind of %s; event is %s", e.Kind, decide.ReasonAllocationFailed, e.Event)
	}
	if !slices.Contains(failureKinds(), e.Kind) {
		return fmt.Errorf("kind %q: not a kind of %s (want one of %s)%s", e.Kind, decide.ReasonAllocationFailed,
			strings.Join(failureKinds(), ", "), didYouMean(e.Kind, failureKinds()))
	}
	return nil
}

// validateConfigMap checks an expect of the ConfigMap's Events.
func (e *Expect) validateConfigMap() error {
	switch {
	case e.Service != "":
		return fmt.Errorf("service %q and configmap: true: give one (an expect checks a Service or the ConfigMap)", e.Service)
	case len(e.Addresses) > 0 || e.NoAddress != nil:
		return errors.New("configmap: true: the ConfigMap has no addresses (give event: InvalidConfig and key)")
	case e.Kind != "":
		return fmt.Errorf("kind %s: a kind of %s, which is recorded on a Service, not the ConfigMap", e.Kind, decide.ReasonAllocationFailed)
	case !slices.Contains(configMapReasons(), e.Event):
		return fmt.Errorf("event %q: the controller records only %s on the ConfigMap%s", e.Event,
			strings.Join(configMapReasons(), ", "), didYouMean(e.Event, configMapReasons()))
	}
	return nil
}

// configMapReasons are the reasons of the Events recorded on the ConfigMap.
func configMapReasons() []string {
	return []string{decide.ReasonInvalidConfig, decide.ReasonUnknownConfigKey, decide.ReasonConfigNotice}
}

func (s *ServiceSpec) validate() error {
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
	for _, ip := range s.Ingress {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("ingress %q: not an IP address", ip)
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
