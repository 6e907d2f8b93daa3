// Package ipaddress reads networking.k8s.io/v1 IPAddress objects as the
// engine's address claims: written once, for the controller's claim store
// (an informer of IPAddress objects) and for kube-vip-sim plan (the live
// cluster's claims loaded into the simulator). It holds no client: the
// callers read the objects, and ask Served first.
package ipaddress

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/cache"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// Served reports whether the API server serves IPAddress objects
// (Kubernetes 1.33 and later, unless the API is disabled), by discovery: no
// networking.k8s.io/v1 or no ipaddresses in it is false; a discovery that
// fails is an error, not a silent false.
func Served(d discovery.DiscoveryInterface) (bool, error) {
	list, err := d.ServerResourcesForGroupVersion(networkingv1.SchemeGroupVersion.String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", networkingv1.SchemeGroupVersion, err)
	}
	return slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == "ipaddresses" }), nil
}

// Claim reads an IPAddress as a claim: the address from its name, the
// manager from its managed-by label, the owner from a parentRef to a
// Service, the sharers and their UIDs from the sharers and uids
// annotations (only on a claim of ours; a malformed uids annotation reads
// as none), the ID from its UID, Created from its creationTimestamp. False
// when its name is no address.
func Claim(ip *networkingv1.IPAddress) (engine.Claim, bool) {
	a, err := netip.ParseAddr(ip.Name)
	if err != nil {
		return engine.Claim{}, false
	}
	cl := engine.Claim{Addr: a.Unmap(), Manager: ip.Labels[networkingv1.LabelManagedBy], ID: string(ip.UID), Created: ip.CreationTimestamp.Time}
	if p := ip.Spec.ParentRef; p != nil && p.Group == "" && p.Resource == "services" {
		cl.Owner = p.Namespace + "/" + p.Name
	}
	if cl.Ours() {
		cl.Sharers = ParseSharers(ip.Annotations[engine.SharersAnnotation])
		cl.UIDs, _ = engine.ParseUIDs(ip.Annotations[engine.UIDsAnnotation])
	}
	return cl, true
}

// ParseSharers reads the sharers annotation: "namespace/name" entries,
// comma-separated, each kept once; entries that are no such key are
// skipped.
func ParseSharers(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if ns, name, err := cache.SplitMetaNamespaceKey(s); err == nil && ns != "" && name != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
