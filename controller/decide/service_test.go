package decide

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestInUse(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		want string
	}{
		{"nothing", svc("ns", "a"), ""},
		{"annotation, spaces and empties", svc("ns", "a", annotated(AnnotationLoadBalancerIPs, " 192.0.2.1 ,, 2001:db8::1 ,")), "192.0.2.1,2001:db8::1"},
		{"malformed entries skipped", svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "bogus,192.0.2.1,fe80::1%eth0")), "192.0.2.1"},
		{"DHCP marker left out", svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "0.0.0.0"), ingress("192.0.2.9")), "192.0.2.9"},
		{"IPv4-mapped read as IPv4", svc("ns", "a", lbIP("::ffff:192.0.2.7")), "192.0.2.7"},
		{"every field, duplicates once", svc("ns", "a",
			annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), annotated(AnnotationMetalLBIPs, "192.0.2.2,192.0.2.1"),
			annotated(AnnotationCiliumIPs, "192.0.2.3"), lbIP("192.0.2.4"), ingress("192.0.2.1"), ingress("192.0.2.5")),
			"192.0.2.1,192.0.2.2,192.0.2.3,192.0.2.4,192.0.2.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := JoinAddrs(InUse(tc.svc)); got != tc.want {
				t.Errorf("InUse = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAddresses(t *testing.T) {
	for _, tc := range []struct {
		name         string
		svc          *corev1.Service
		want, source string
		err          string
	}{
		{"nothing", svc("ns", "a"), "", "", ""},
		{"annotation first", svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "192.0.2.1, 2001:db8::1"), annotated(AnnotationMetalLBIPs, "192.0.2.2"), lbIP("192.0.2.3")),
			"192.0.2.1,2001:db8::1", "annotation " + AnnotationLoadBalancerIPs, ""},
		{"blank annotation falls through", svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "  "), annotated(AnnotationCiliumIPs, "192.0.2.2")),
			"192.0.2.2", "annotation " + AnnotationCiliumIPs, ""},
		{"spec next", svc("ns", "a", lbIP(" 192.0.2.3 ")), "192.0.2.3", "spec.loadBalancerIP", ""},
		{"legacy label last", svc("ns", "a", labelled(LabelLegacyIPAMAddress, "192.0.2.4")), "192.0.2.4", "label " + LabelLegacyIPAMAddress, ""},
		{"malformed annotation named", svc("ns", "a", annotated(AnnotationMetalLBIPs, "192.0.2.1,bogus")), "", "",
			`annotation ` + AnnotationMetalLBIPs + `="192.0.2.1,bogus": "bogus" is not an IP address`},
		{"two in spec", svc("ns", "a", lbIP("192.0.2.1,192.0.2.2")), "", "", `spec.loadBalancerIP="192.0.2.1,192.0.2.2": not an IP address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, source, err := Addresses(tc.svc)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := JoinAddrs(as); got != tc.want || source != tc.source {
				t.Errorf("Addresses = %q from %q, want %q from %q", got, source, tc.want, tc.source)
			}
		})
	}
}

// FuzzAddresses: whatever the fields hold, InUse returns each address once,
// none unspecified or zoned, and every address Addresses reads from an
// annotation or spec.loadBalancerIP (not the DHCP marker) is among them.
func FuzzAddresses(f *testing.F) {
	f.Add("192.0.2.1, 2001:db8::1", "", "", "")
	f.Add("", "192.0.2.2,bogus", "::ffff:192.0.2.3", "0.0.0.0")
	f.Add(" , ,", "", "fe80::1%eth0", "192.0.2.1")
	f.Fuzz(func(t *testing.T, ours, metallb, spec, status string) {
		s := svc("ns", "a", annotated(AnnotationLoadBalancerIPs, ours), annotated(AnnotationMetalLBIPs, metallb), lbIP(spec), ingress(status))
		used := InUse(s)
		for i, a := range used {
			if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.Is4In6() || slices.Contains(used[:i], a) {
				t.Fatalf("InUse = %v: %v at %d", used, a, i)
			}
		}
		as, source, err := Addresses(s)
		if err != nil {
			if m := err.Error(); !strings.HasPrefix(m, "annotation ") && !strings.HasPrefix(m, "spec.loadBalancerIP=") {
				t.Fatalf("Addresses error %q does not name the field", err)
			}
			return
		}
		if strings.HasPrefix(source, "label") {
			return
		}
		for _, a := range as {
			if !a.IsUnspecified() && !slices.Contains(used, a) {
				t.Fatalf("Addresses %v from %s, but InUse %v lacks %v", as, source, used, a)
			}
		}
	})
}
