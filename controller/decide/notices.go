package decide

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// Notices returns the UnsupportedAnnotation Warnings for svc: annotations
// that ask for something this provider will not do as written, each with
// what to use instead. Only a Service this provider manages is told (one
// of another class is another tool's, whose annotations are its own).
// They are:
//   - kube-vip.io/ignore set to anything but "true" or "false": only
//     "true" ignores a Service, here and in kube-vip;
//   - a key of ours, or a request annotation read here, spelt with
//     another case or punctuation (Kube-vip.io/loadBalancerIPs,
//     kube-vip.io/loadbalancerIP): annotation keys are case-sensitive;
//   - MetalLB's pool selection, MetalLB's and Cilium's sharing keys: not
//     supported (docs/other-tools.md);
//   - another tool's request that names other addresses than the request
//     in force: those stay reserved while it is there.
//
// The result is sorted by message and depends on svc alone.
func Notices(svc *corev1.Service, o Options) []Event {
	if !Managed(svc, o) {
		return nil
	}
	var out []string
	if v, ok := svc.Annotations[AnnotationIgnore]; ok && v != "true" && v != "false" && v != "" {
		out = append(out, fmt.Sprintf(
			"annotation %s=%q is not \"true\", the only value that ignores a Service (here and in kube-vip): the Service is handled and advertised; set it to \"true\" to have both leave it alone, or remove it",
			AnnotationIgnore, v))
	}
	read := readKeys()
	folded := make([]string, len(read))
	for i, r := range read {
		folded[i] = foldKey(r)
	}
	for k, v := range svc.Annotations {
		if meant := misspelt(read, folded, k); meant != "" {
			out = append(out, fmt.Sprintf("annotation %q is not read (annotation keys are case-sensitive): did you mean %q? (its value %q is not acted on)", k, meant, v))
		}
		if msg := unsupported(svc, k, v); msg != "" {
			out = append(out, msg)
		}
	}
	out = append(out, shadowed(svc)...)
	sort.Strings(out)
	evs := make([]Event, len(out))
	for i, m := range out {
		evs[i] = Event{EventWarning, ReasonUnsupportedAnnotation, m}
	}
	return evs
}

// readKeys are the annotation keys this provider reads.
func readKeys() []string {
	return append([]string{AnnotationLoadBalancerIPs, AnnotationIgnore, AnnotationServiceInterface}, RequestAnnotations()...)
}

// misspelt returns the key of read (the keys this provider reads, folded
// by foldKey in folded) that k is a misspelling of (the same but for case,
// '-', '_' and '.', or a missing final "s"), or "" when k is one of them
// or like none.
func misspelt(read, folded []string, k string) string {
	if slices.Contains(read, k) {
		return ""
	}
	n := foldKey(k)
	for i, f := range folded {
		if n == f || (len(n)+1 == len(f) && strings.HasPrefix(f, n) && f[len(n)] == 's') {
			return read[i]
		}
	}
	return ""
}

// foldKey lower-cases k and drops '-', '_' and '.'.
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.':
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(k)))
}

// unsupported returns the Warning for another tool's annotation k=v that
// this provider does not act on, or "".
func unsupported(svc *corev1.Service, k, v string) string {
	ns := svc.Namespace
	switch k {
	case AnnotationMetalLBPool, AnnotationMetalLBLegacyPool:
		return fmt.Sprintf("annotation %s=%q is not supported: pools are chosen by namespace here (%s%s / %s%s in the ConfigMap, else %s%s / %s%s); ask for an address of that pool in %s, or give the namespace its own pool",
			k, v, allocator.KeyCIDRPrefix, ns, allocator.KeyRangePrefix, ns, allocator.KeyCIDRPrefix, allocator.GlobalPool, allocator.KeyRangePrefix, allocator.GlobalPool,
			AnnotationLoadBalancerIPs)
	case AnnotationMetalLBSharing, AnnotationMetalLBLegacySharing, AnnotationCiliumSharing, AnnotationCiliumLegacySharing:
		return fmt.Sprintf("annotation %s=%q is not supported: Services share an address here when %s%s (or %s%s) is \"true\" in the ConfigMap and their ports do not collide; to put given Services on one address, ask for it in %s on each (granted when their ports do not collide)",
			k, v, allocator.KeyAllowSharePrefix, ns, allocator.KeyAllowSharePrefix, allocator.GlobalPool, AnnotationLoadBalancerIPs)
	case AnnotationCiliumCrossNamespace, AnnotationCiliumLegacyCrossNamespace:
		return fmt.Sprintf("annotation %s=%q is not supported: to share an address across namespaces, ask for it in %s on each Service (granted when their ports do not collide)",
			k, v, AnnotationLoadBalancerIPs)
	}
	return ""
}

// shadowed returns a Warning for each request annotation of another tool
// that names other addresses than the request in force (an earlier one in
// the order Addresses reads them): it is not acted on, yet what it names
// stays reserved (InUse) while it is there.
func shadowed(svc *corev1.Service) []string {
	_, src, err := Addresses(svc)
	if err != nil || src == "" {
		return nil
	}
	inForce := strings.TrimPrefix(src, "annotation ")
	var out []string
	for _, k := range RequestAnnotations() {
		v := strings.TrimSpace(svc.Annotations[k])
		if k == inForce || v == "" {
			continue
		}
		theirs, perr := parseAddrList(v)
		mine, _, _ := Addresses(svc)
		if perr == nil && sameAddrs(theirs, mine) {
			continue
		}
		out = append(out, fmt.Sprintf("annotation %s=%q is not acted on: %s comes first; what it names stays reserved while it is there: remove it, or make it name the same addresses",
			k, v, src))
	}
	return out
}

// sameAddrs reports whether a and b hold the same addresses, in any order.
func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
