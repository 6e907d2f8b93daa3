package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// kindCreate is the create step: a user creates a Service.
func kindCreate() stepKind {
	return stepKind{
		name: "create", example: "create: {service: NS/NAME}",
		value: func(st *Step) any { return orNil(st.Create) },
		decode: func(st *Step, raw json.RawMessage) (err error) {
			st.Create, err = decodeServiceSpec(raw, true)
			return err
		},
		validate: func(st *Step) error { return st.Create.validate() },
		play:     func(s *simulator, st *Step) error { return s.create(st.Create) },
	}
}

// kindUpdate is the update step: a user changes a Service.
func kindUpdate() stepKind {
	return stepKind{
		name: "update", example: "update: {service: NS/NAME}",
		value: func(st *Step) any { return orNil(st.Update) },
		decode: func(st *Step, raw json.RawMessage) (err error) {
			st.Update, err = decodeServiceSpec(raw, false)
			return err
		},
		validate: func(st *Step) error { return st.Update.validate() },
		play:     func(s *simulator, st *Step) error { return s.update(st.Update) },
	}
}

// kindDelete is the delete step: a user deletes a Service, or the ConfigMap.
func kindDelete() stepKind {
	return stepKind{
		name: "delete", example: "delete: {service: NS/NAME}",
		value: func(st *Step) any { return orNil(st.Delete) },
		decode: func(st *Step, raw json.RawMessage) (err error) {
			st.Delete, err = decodeDelete(raw)
			return err
		},
		validate: func(st *Step) error {
			if st.Delete.ConfigMap {
				if st.Delete.Service != "" {
					return fmt.Errorf("service %q and configmap: true: give one", st.Delete.Service)
				}
				return nil
			}
			_, _, err := splitRef(st.Delete.Service)
			return err
		},
		play: func(s *simulator, st *Step) error {
			if st.Delete.ConfigMap {
				s.deleteConfigMap()
				return nil
			}
			return s.deleteService(st.Delete.Service)
		},
	}
}

// kindConfig is the config step: a user replaces the ConfigMap's data.
func kindConfig() stepKind {
	return stepKind{
		name: "config", example: "config: {cidr-global: 192.168.0.200/29}",
		value: func(st *Step) any {
			if st.Config == nil {
				return nil
			}
			return st.Config
		},
		decode: func(st *Step, raw json.RawMessage) error {
			data, err := asMap(raw)
			if err != nil {
				return err
			}
			if data == nil {
				data = map[string]string{} // config: with nothing empties the ConfigMap
			}
			st.Config = data
			return nil
		},
		validate: func(*Step) error { return nil },
		play:     func(s *simulator, st *Step) error { s.changeConfig(st.Config); return nil },
	}
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

// The fields of a create or update, of a sync, and of a delete.
var (
	serviceFields = []string{"service", "type", "ports", "ipFamilyPolicy", "ipFamilies", "loadBalancerIP", "loadBalancerClass", "annotations", "ingress"}
	refFields     = []string{"service"}
	deleteFields  = []string{"service", "configmap"}
)

func decodeServiceSpec(raw json.RawMessage, create bool) (*ServiceSpec, error) {
	spec := &ServiceSpec{}
	if create && isString(raw) { // create: NS/NAME
		ref, err := asService(raw)
		spec.Service = ref
		return spec, err
	}
	m, err := fields(raw, "{service: NS/NAME, ...}", serviceFields)
	if err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "service":
			spec.Service, err = asService(v)
		case "type":
			spec.Type, err = asString(v)
			spec.Type = canonical(spec.Type, "LoadBalancer", "ClusterIP", "NodePort")
		case "ports":
			spec.Ports, err = asStrings(v)
		case "ipFamilyPolicy":
			spec.IPFamilyPolicy, err = asString(v)
			spec.IPFamilyPolicy = canonical(spec.IPFamilyPolicy, "SingleStack", "PreferDualStack", "RequireDualStack")
		case "ipFamilies":
			spec.IPFamilies, err = asStrings(v)
			for i, f := range spec.IPFamilies {
				spec.IPFamilies[i] = canonical(f, "IPv4", "IPv6")
			}
		case "loadBalancerIP":
			var ip string
			ip, err = asString(v)
			spec.LoadBalancerIP = &ip
		case "loadBalancerClass":
			var class string
			class, err = asString(v)
			spec.LoadBalancerClass = &class
		case "annotations":
			spec.Annotations, err = asMap(v)
		case "ingress":
			spec.Ingress, err = asStrings(v)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if _, ok := m["service"]; !ok {
		return nil, errors.New("service: missing (write service: NS/NAME)")
	}
	return spec, nil
}

// Ref names a Service as namespace/name.
type Ref struct {
	Service string `json:"service,omitempty"`
	// ConfigMap, instead of a Service, names the kubevip ConfigMap
	// (delete: {configmap: true}).
	ConfigMap bool `json:"configmap,omitempty"`
}

func decodeRef(raw json.RawMessage) (string, error) {
	if isString(raw) { // delete: NS/NAME
		return asService(raw)
	}
	m, err := fields(raw, "{service: NS/NAME}", refFields)
	if err != nil {
		return "", err
	}
	v, ok := m["service"]
	if !ok {
		return "", errors.New("service: missing (write service: NS/NAME)")
	}
	ref, err := asService(v)
	if err != nil {
		return "", fmt.Errorf("service: %w", err)
	}
	return ref, nil
}

// decodeDelete reads delete: NS/NAME, {service: NS/NAME} or
// {configmap: true}.
func decodeDelete(raw json.RawMessage) (*Ref, error) {
	if !isString(raw) {
		m, err := fields(raw, "{service: NS/NAME} or {configmap: true}", deleteFields)
		if err != nil {
			return nil, err
		}
		if v, ok := m["configmap"]; ok {
			b, err := asBool(v)
			if err != nil {
				return nil, fmt.Errorf("configmap: %w", err)
			}
			if !b {
				return nil, errors.New("configmap: false: write delete: {configmap: true} to delete the ConfigMap, or delete: {service: NS/NAME}")
			}
			ref := &Ref{ConfigMap: true}
			if v, ok := m["service"]; ok {
				ref.Service, _ = asString(v)
			}
			return ref, nil
		}
	}
	ref, err := decodeRef(raw)
	if err != nil {
		return nil, err
	}
	return &Ref{Service: ref}, nil
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
	delete(s.outcomes.failed, spec.Service)
	s.reindex(spec.Service)
	s.add(Row{Actor: "user", What: "update", Service: spec.Service})
	return nil
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

// className returns svc's loadBalancerClass, or "".
func className(svc *corev1.Service) string {
	if svc.Spec.LoadBalancerClass == nil {
		return ""
	}
	return *svc.Spec.LoadBalancerClass
}

// deleteService plays delete: the Service is gone from the API server.
func (s *simulator) deleteService(key string) error {
	if _, ok := s.cluster.services[key]; !ok {
		return fmt.Errorf("step %d (delete): %s: no such Service", s.step, key)
	}
	s.cluster.store(key, nil)
	s.reindex(key)
	s.outcomes.forget(key)
	s.add(Row{Actor: "user", What: "delete", Service: key})
	return nil
}

// deleteConfigMap plays delete: {configmap: true}: the ConfigMap is gone;
// the leader has no pools until a config step creates it again, and syncs
// every Service again, as the controller does.
func (s *simulator) deleteConfigMap() {
	s.add(Row{Actor: "user", What: "delete", Detail: "ConfigMap kube-system/kubevip"})
	s.cm.remove()
	if s.ctl.stopped {
		return
	}
	s.ctl.leading().engine.SetConfig(s.ctx, nil) // wakes every Service
}

// changeConfig plays config: the data is replaced; the leader loads it.
func (s *simulator) changeConfig(data map[string]string) { s.setConfig(data) }

func formatData(d map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(d) {
		parts = append(parts, k+"="+d[k])
	}
	return strings.Join(parts, " ")
}
