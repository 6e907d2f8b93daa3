package decide

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// Options are the controller settings that change which Services it handles.
type Options struct {
	// EnableLoadBalancerClass: handle only Services whose loadBalancerClass
	// is LoadBalancerClass (KUBEVIP_ENABLE_LOADBALANCERCLASS). Otherwise
	// handle only Services with no class.
	EnableLoadBalancerClass bool
	// LoadBalancerClass is the class handled when EnableLoadBalancerClass is
	// set; empty means DefaultLoadBalancerClass.
	LoadBalancerClass string
	// Flaws are deliberate defects for the broken-engine tests: only in a
	// build with the tag mutants (package mutant); empty in any other.
	Flaws mutant.Flaws
}

func (o Options) class() string {
	if o.LoadBalancerClass == "" {
		return DefaultLoadBalancerClass
	}
	return o.LoadBalancerClass
}

// Key returns "namespace/name", the Service's identity everywhere here.
func Key(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

// IsLoadBalancer reports whether svc is of type LoadBalancer and not being deleted.
func IsLoadBalancer(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.DeletionTimestamp == nil
}

// Managed reports whether this provider should give svc an address: a
// LoadBalancer of the handled class, not annotated kube-vip.io/ignore.
func Managed(svc *corev1.Service, o Options) bool {
	return IsLoadBalancer(svc) && svc.Annotations[AnnotationIgnore] != "true" && HandlesClass(svc, o)
}

// HandlesClass reports whether svc's loadBalancerClass is the one this
// provider handles: none by default, the configured class with
// EnableLoadBalancerClass. It says nothing of the type.
func HandlesClass(svc *corev1.Service, o Options) bool {
	cls := svc.Spec.LoadBalancerClass
	if o.EnableLoadBalancerClass {
		return cls != nil && *cls == o.class()
	}
	return cls == nil || *cls == ""
}

// hasCleanupFinalizer reports whether svc carries FinalizerLoadBalancerCleanup.
func hasCleanupFinalizer(svc *corev1.Service) bool {
	return slices.Contains(svc.Finalizers, FinalizerLoadBalancerCleanup)
}

// Addresses returns the addresses svc carries or asks for, and where they
// came from: the annotation kube-vip.io/loadbalancerIPs, else the request
// annotations of the tools users migrate from (RequestAnnotations, in that
// order), else spec.loadBalancerIP, else the legacy ipam-address label. A
// malformed value is an error naming the field.
func Addresses(svc *corev1.Service) ([]netip.Addr, string, error) {
	if k, v := requestAnnotation(svc); v != "" {
		as, err := parseAddrList(v)
		if err != nil {
			return nil, "", fmt.Errorf("annotation %s=%q: %w", k, v, err)
		}
		return as, "annotation " + k, nil
	}
	if v := strings.TrimSpace(svc.Spec.LoadBalancerIP); v != "" {
		as, err := parseAddrList(v)
		if err != nil || len(as) != 1 {
			return nil, "", fmt.Errorf("spec.loadBalancerIP=%q: not an IP address", v)
		}
		return as, "spec.loadBalancerIP", nil
	}
	if v := strings.TrimSpace(svc.Labels[LabelLegacyIPAMAddress]); v != "" {
		as, err := parseAddrList(v)
		if err != nil || len(as) != 1 {
			return nil, "", fmt.Errorf("label %s=%q: not an IP address", LabelLegacyIPAMAddress, v)
		}
		return as, "label " + LabelLegacyIPAMAddress, nil
	}
	return nil, "", nil
}

// requestAnnotation returns the first annotation of svc that asks for
// addresses (kube-vip.io/loadbalancerIPs, then RequestAnnotations in
// order) and its trimmed value; value "" when it has none.
func requestAnnotation(svc *corev1.Service) (key, value string) {
	if v := strings.TrimSpace(svc.Annotations[AnnotationLoadBalancerIPs]); v != "" {
		return AnnotationLoadBalancerIPs, v
	}
	for _, k := range RequestAnnotations() {
		if v := strings.TrimSpace(svc.Annotations[k]); v != "" {
			return k, v
		}
	}
	return "", ""
}

// InUse returns every address svc is, or may be, served on, whatever its
// class, its kube-vip.io/ignore or the validity of its fields: each entry
// of its kube-vip.io/loadbalancerIPs annotation that is an address
// (kube-vip advertises each), of the request annotations of other tools
// (RequestAnnotations: the tool may still serve it there), its
// spec.loadBalancerIP and the IPs of its status.loadBalancer.ingress. The
// DHCP marker 0.0.0.0 is left out.
func InUse(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" {
			return // most fields are empty: no parse (whose error allocates)
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || a.Unmap().IsUnspecified() || slices.Contains(out, a.Unmap()) {
			return
		}
		out = append(out, a.Unmap())
	}
	addList := func(v string) {
		for s := range strings.SplitSeq(v, ",") {
			add(s)
		}
	}
	addList(svc.Annotations[AnnotationLoadBalancerIPs])
	for _, k := range RequestAnnotations() {
		addList(svc.Annotations[k])
	}
	add(svc.Spec.LoadBalancerIP)
	for _, in := range svc.Status.LoadBalancer.Ingress {
		add(in.IP)
	}
	return out
}

// StatusAddresses returns the IPs of svc's status.loadBalancer.ingress,
// the addresses a load-balancer serves it on.
func StatusAddresses(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(strings.TrimSpace(in.IP)); err == nil && a.Zone() == "" && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// OnePerFamily reports whether as holds at most one address of each family,
// as a valid request does.
func OnePerFamily(as []netip.Addr) bool {
	v4, v6 := 0, 0
	for _, a := range as {
		if a.Is4() {
			v4++
		} else {
			v6++
		}
	}
	return v4 <= 1 && v6 <= 1
}

func parseAddrList(v string) ([]netip.Addr, error) {
	var out []netip.Addr
	for s := range strings.SplitSeq(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address", s)
		}
		out = append(out, a.Unmap())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no address")
	}
	return out, nil
}

// Ports projects the Service's ports for sharing decisions.
func Ports(svc *corev1.Service) []allocator.Port {
	out := make([]allocator.Port, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		out = append(out, allocator.Port{Number: p.Port, Protocol: proto})
	}
	return out
}

// Request projects svc into the allocator's request type.
func Request(svc *corev1.Service, requested []netip.Addr) allocator.Request {
	r := allocator.Request{
		Owner:     Key(svc),
		Namespace: svc.Namespace,
		Ports:     Ports(svc),
		Requested: requested,
	}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			r.Families = append(r.Families, allocator.IPv4)
		case corev1.IPv6Protocol:
			r.Families = append(r.Families, allocator.IPv6)
		}
	}
	if svc.Spec.IPFamilyPolicy != nil {
		r.Policy = allocator.FamilyPolicy(*svc.Spec.IPFamilyPolicy)
	}
	return r
}

// Holding projects the addresses svc holds for the Usage ledger; the other
// addresses it is served on (InUse) are its Also.
func Holding(svc *corev1.Service, addrs []netip.Addr) allocator.Holding {
	h := allocator.Holding{Owner: Key(svc), Namespace: svc.Namespace, Ports: Ports(svc), Addrs: addrs}
	for _, a := range InUse(svc) {
		if !slices.Contains(addrs, a) {
			h.Also = append(h.Also, a)
		}
	}
	return h
}

// JoinAddrs formats addresses as the annotation does: comma-separated.
func JoinAddrs(as []netip.Addr) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}
