package ipaddress

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

func TestParseSharers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"ns/a", []string{"ns/a"}},
		{"ns/a,ns/b", []string{"ns/a", "ns/b"}},
		{" ns/a , ns/b ,", []string{"ns/a", "ns/b"}},
		{"ns/a,ns/a", []string{"ns/a"}},
		{"a,/b,ns/,ns/a/b,ns/c", []string{"ns/c"}},
	} {
		if got := ParseSharers(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("ParseSharers(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseSharers: whatever the annotation says, every sharer read is a
// "namespace/name" key, named once, and writing them back reads the same.
func FuzzParseSharers(f *testing.F) {
	for _, s := range []string{"", "ns/a,ns/b", " ns/a , ,ns/a", "a/b/c,/x,y/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := ParseSharers(v)
		for i, s := range got {
			ns, name, err := cache.SplitMetaNamespaceKey(s)
			if err != nil || ns == "" || name == "" {
				t.Fatalf("%q: sharer %q is no namespace/name key", v, s)
			}
			if slices.Index(got, s) != i {
				t.Fatalf("%q: sharer %q twice", v, s)
			}
		}
		if again := ParseSharers(strings.Join(got, ",")); !slices.Equal(again, got) {
			t.Fatalf("%q: read %q, written back and read again %q", v, got, again)
		}
	})
}

func TestClaim(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	svc := func(ns, name string) *networkingv1.ParentReference {
		return &networkingv1.ParentReference{Resource: "services", Namespace: ns, Name: name}
	}
	ipAddr := func(name, manager string, parent *networkingv1.ParentReference, sharers string) *networkingv1.IPAddress {
		ip := &networkingv1.IPAddress{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: "uid-1", CreationTimestamp: created,
				Labels: map[string]string{networkingv1.LabelManagedBy: manager}},
			Spec: networkingv1.IPAddressSpec{ParentRef: parent},
		}
		if sharers != "" {
			ip.Annotations = map[string]string{engine.SharersAnnotation: sharers}
		}
		return ip
	}
	base := engine.Claim{ID: "uid-1", Created: created.Time}
	with := func(addr, manager, owner string, sharers ...string) engine.Claim {
		c := base
		c.Addr, c.Manager, c.Owner, c.Sharers = netip.MustParseAddr(addr), manager, owner, sharers
		return c
	}
	for _, tc := range []struct {
		name string
		in   *networkingv1.IPAddress
		want engine.Claim
		ok   bool
	}{
		{"the ClusterIP allocator's", ipAddr("10.96.0.10", engine.ClusterIPManager, svc("default", "kubernetes"), ""),
			with("10.96.0.10", engine.ClusterIPManager, "default/kubernetes"), true},
		{"ours, with sharers", ipAddr("192.0.2.5", engine.ManagedBy, svc("ns", "a"), "ns/b, ns/c,ns/b"),
			with("192.0.2.5", engine.ManagedBy, "ns/a", "ns/b", "ns/c"), true},
		{"another manager's: no sharers read", ipAddr("192.0.2.6", "metallb", svc("ns", "a"), "ns/b"),
			with("192.0.2.6", "metallb", "ns/a"), true},
		{"parented by no Service", ipAddr("192.0.2.7", "other", &networkingv1.ParentReference{Group: "gateway.networking.k8s.io", Resource: "gateways", Namespace: "ns", Name: "g"}, ""),
			with("192.0.2.7", "other", ""), true},
		{"IPv6", ipAddr("2001:db8::1", engine.ManagedBy, svc("ns", "a"), ""),
			with("2001:db8::1", engine.ManagedBy, "ns/a"), true},
		{"named by no address", ipAddr("not-an-address", engine.ManagedBy, svc("ns", "a"), ""), engine.Claim{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Claim(tc.in)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Claim = %+v, want %+v", got, tc.want)
			}
		})
	}
}
