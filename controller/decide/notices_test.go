package decide

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestNotices(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
		o    Options
		want []string // one substring per Warning, in order
	}{
		{name: "nothing unusual", svc: svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "10.0.0.1"), annotated("example.com/x", "y"))},
		{name: "ignore true: not ours, nothing said", svc: svc("ns", "a", annotated(AnnotationIgnore, "true"), annotated(AnnotationMetalLBPool, "p"))},
		{name: "ignore false is fine", svc: svc("ns", "a", annotated(AnnotationIgnore, "false"))},
		{name: "ignore yes", svc: svc("ns", "a", annotated(AnnotationIgnore, "yes")),
			want: []string{`annotation kube-vip.io/ignore="yes" is not "true"`}},
		{name: "ignore TRUE", svc: svc("ns", "a", annotated(AnnotationIgnore, "TRUE")),
			want: []string{`kube-vip.io/ignore="TRUE" is not "true", the only value that ignores a Service`}},
		{name: "ignore with a space", svc: svc("ns", "a", annotated(AnnotationIgnore, "true ")),
			want: []string{`kube-vip.io/ignore="true "`}},
		{name: "camel-cased key of ours", svc: svc("ns", "a", annotated("kube-vip.io/loadBalancerIPs", "10.0.0.1")),
			want: []string{`"kube-vip.io/loadBalancerIPs" is not read (annotation keys are case-sensitive): did you mean "kube-vip.io/loadbalancerIPs"?`}},
		{name: "capitalised prefix", svc: svc("ns", "a", annotated("Kube-vip.io/loadbalancerIPs", "10.0.0.1")),
			want: []string{`did you mean "kube-vip.io/loadbalancerIPs"`}},
		{name: "singular", svc: svc("ns", "a", annotated("kube-vip.io/loadbalancerIP", "10.0.0.1")),
			want: []string{`did you mean "kube-vip.io/loadbalancerIPs"`}},
		{name: "ignore miscased", svc: svc("ns", "a", annotated("kube-vip.io/Ignore", "true")),
			want: []string{`did you mean "kube-vip.io/ignore"`}},
		{name: "MetalLB's request miscased", svc: svc("ns", "a", annotated("metallb.io/loadbalancerIPs", "10.0.0.1")),
			want: []string{`did you mean "metallb.io/loadBalancerIPs"`}},
		{name: "MetalLB's address pool", svc: svc("ns", "a", annotated(AnnotationMetalLBPool, "blue")),
			want: []string{`annotation metallb.io/address-pool="blue" is not supported: pools are chosen by namespace here (cidr-ns / range-ns`}},
		{name: "MetalLB's older address pool", svc: svc("ns", "a", annotated(AnnotationMetalLBLegacyPool, "blue")),
			want: []string{`metallb.universe.tf/address-pool="blue" is not supported`}},
		{name: "MetalLB's sharing key", svc: svc("ns", "a", annotated(AnnotationMetalLBSharing, "dns")),
			want: []string{`metallb.io/allow-shared-ip="dns" is not supported: Services share an address here when allow-share-ns (or allow-share-global) is "true"`}},
		{name: "MetalLB's older sharing key", svc: svc("ns", "a", annotated(AnnotationMetalLBLegacySharing, "dns")),
			want: []string{`metallb.universe.tf/allow-shared-ip="dns" is not supported`}},
		{name: "Cilium's sharing key", svc: svc("ns", "a", annotated(AnnotationCiliumSharing, "k")),
			want: []string{`lbipam.cilium.io/sharing-key="k" is not supported`}},
		{name: "Cilium's older sharing key", svc: svc("ns", "a", annotated(AnnotationCiliumLegacySharing, "k")),
			want: []string{`io.cilium/lb-ipam-sharing-key="k" is not supported`}},
		{name: "Cilium's cross-namespace sharing", svc: svc("ns", "a", annotated(AnnotationCiliumCrossNamespace, "*")),
			want: []string{`lbipam.cilium.io/sharing-cross-namespace="*" is not supported`}},
		{name: "MetalLB's record of its pool: silent", svc: svc("ns", "a", annotated(AnnotationMetalLBAllocatedFrom, "blue"), annotated(AnnotationMetalLBLegacyAllocatedFrom, "blue"))},
		{name: "another tool's request, same as ours: silent",
			svc: svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "10.0.0.1"), annotated(AnnotationMetalLBIPs, " 10.0.0.1 "))},
		{name: "another tool's request that differs from ours", svc: svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "10.0.0.1"), annotated(AnnotationCiliumIPs, "10.0.0.2")),
			want: []string{`annotation lbipam.cilium.io/ips="10.0.0.2" is not acted on: annotation kube-vip.io/loadbalancerIPs comes first`}},
		{name: "two other tools' requests that differ", svc: svc("ns", "a", annotated(AnnotationMetalLBIPs, "10.0.0.1"), annotated(AnnotationCiliumLegacyIPs, "10.0.0.2")),
			want: []string{`io.cilium/lb-ipam-ips="10.0.0.2" is not acted on: annotation metallb.io/loadBalancerIPs comes first`}},
		{name: "another class: its annotations are another tool's", svc: svc("ns", "a", class("metallb.io/metallb"), annotated(AnnotationMetalLBPool, "blue"))},
		{name: "our class, with class filtering", o: Options{EnableLoadBalancerClass: true},
			svc:  svc("ns", "a", class(DefaultLoadBalancerClass), annotated(AnnotationMetalLBSharing, "k")),
			want: []string{`metallb.io/allow-shared-ip="k"`}},
		{name: "not a LoadBalancer", svc: svc("ns", "a", typ(corev1.ServiceTypeClusterIP), annotated(AnnotationMetalLBPool, "blue"))},
		{name: "several: sorted", svc: svc("ns", "a", annotated(AnnotationMetalLBPool, "p"), annotated(AnnotationIgnore, "1"), annotated(AnnotationCiliumSharing, "k")),
			want: []string{"kube-vip.io/ignore", "lbipam.cilium.io/sharing-key", "metallb.io/address-pool"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Notices(tt.svc, tt.o)
			if len(got) != len(tt.want) {
				t.Fatalf("%d notices %q, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].Type != EventWarning || got[i].Reason != ReasonUnsupportedAnnotation {
					t.Errorf("notice %d is %s %s", i, got[i].Type, got[i].Reason)
				}
				if !strings.Contains(got[i].Message, w) {
					t.Errorf("notice %d %q does not say %q", i, got[i].Message, w)
				}
			}
		})
	}
}

func TestEventMemoryOnceIsOncePerServiceAndValue(t *testing.T) {
	m := NewEventMemory()
	a := Event{EventWarning, ReasonUnsupportedAnnotation, "x=1"}
	b := Event{EventWarning, ReasonUnsupportedAnnotation, "x=2"}
	if got := m.Once("ns/s", []Event{a}); len(got) != 1 {
		t.Fatalf("first: %v", got)
	}
	m.Fresh("ns/s", []Event{{EventNormal, ReasonAddressAssigned, "assigned"}}, true) // something else in between
	if got := m.Once("ns/s", []Event{a, b}); !slices.Equal(got, []Event{b}) {
		t.Errorf("again with a new value: %v, want only the new value", got)
	}
	if got := m.Once("ns/t", []Event{a}); len(got) != 1 {
		t.Errorf("another Service: %v, want it recorded", got)
	}
	m.Forget("ns/s")
	if got := m.Once("ns/s", []Event{a}); len(got) != 1 {
		t.Errorf("after Forget: %v, want it recorded again", got)
	}
}

// FuzzNotices: whatever the annotations, Notices does not panic, is
// deterministic, says nothing of the exact keys it reads with sound values,
// and every Warning quotes the key it is about.
func FuzzNotices(f *testing.F) {
	f.Add("kube-vip.io/loadBalancerIPs", "10.0.0.1", "kube-vip.io/ignore", "TRUE")
	f.Add("metallb.io/address-pool", "blue", "lbipam.cilium.io/ips", "10.0.0.2,bogus")
	f.Add("Kube-Vip.IO/LoadBalancerIP", "", "io.cilium/lb-ipam-ips", " 2001:db8::1 ")
	f.Add("metallb.universe.tf/allow-shared-ip", "k", "kube-vip.io/loadbalancerIPs", "10.0.0.3")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		s := svc("ns", "a", annotated(k1, v1), annotated(k2, v2))
		got := Notices(s, Options{})
		if again := Notices(s, Options{}); !slices.Equal(got, again) {
			t.Fatalf("not deterministic: %q then %q", got, again)
		}
		for _, e := range got {
			if e.Type != EventWarning || e.Reason != ReasonUnsupportedAnnotation {
				t.Fatalf("notice %v", e)
			}
			if !strings.Contains(e.Message, k1) && !strings.Contains(e.Message, k2) &&
				!strings.Contains(e.Message, strconv.Quote(k1)) && !strings.Contains(e.Message, strconv.Quote(k2)) {
				t.Fatalf("notice %q names neither %q nor %q", e.Message, k1, k2)
			}
		}
		// The exact keys this provider reads, with sound values, are
		// never warned about.
		clean := svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "10.0.0.1"), annotated(AnnotationIgnore, "false"),
			annotated(AnnotationServiceInterface, v1))
		if n := Notices(clean, Options{}); len(n) != 0 {
			t.Fatalf("sound annotations warned about: %q", n)
		}
	})
}

// BenchmarkNotices is the cost every sync pays for a Service with a dozen
// ordinary annotations (and nothing to say about them).
func BenchmarkNotices(b *testing.B) {
	s := svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "10.0.0.1"))
	for i := range 11 {
		annotated("example.com/k"+strconv.Itoa(i), "v")(s)
	}
	b.ReportAllocs()
	for b.Loop() {
		if n := Notices(s, Options{}); len(n) != 0 {
			b.Fatal(n)
		}
	}
}
