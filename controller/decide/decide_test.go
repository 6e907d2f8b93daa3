package decide

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

func mustConfig(t *testing.T, data map[string]string) *allocator.Config {
	t.Helper()
	cfg, err := allocator.Parse(data, nil)
	if err != nil {
		t.Fatalf("parse %v: %v", data, err)
	}
	return cfg
}

type svcOpt func(*corev1.Service)

func svc(ns, name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "10"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func annotated(k, v string) svcOpt {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func labelled(k, v string) svcOpt {
	return func(s *corev1.Service) {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
}

func lbIP(ip string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerIP = ip } }

func ingress(ip string) svcOpt {
	return func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
}

func class(c string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c } }

func typ(t corev1.ServiceType) svcOpt { return func(s *corev1.Service) { s.Spec.Type = t } }

func rv(v string) svcOpt { return func(s *corev1.Service) { s.ResourceVersion = v } }

func created(sec int64) svcOpt {
	return func(s *corev1.Service) { s.CreationTimestamp = metav1.Unix(sec, 0) }
}

func finalized(s *corev1.Service) {
	s.Finalizers = append(s.Finalizers, "example.com/keep", FinalizerLoadBalancerCleanup)
}

func deleting(s *corev1.Service) { now := metav1.Unix(100, 0); s.DeletionTimestamp = &now }

func dualStack(p corev1.IPFamilyPolicy, fams ...corev1.IPFamily) svcOpt {
	return func(s *corev1.Service) { s.Spec.IPFamilyPolicy = &p; s.Spec.IPFamilies = fams }
}

func portsOf(ps ...int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ps {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p, Protocol: corev1.ProtocolTCP})
		}
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestDecide(t *testing.T) {
	pool := map[string]string{"cidr-global": "192.0.2.0/29", "interface-global": "eth1"}
	held := func(u *allocator.Usage) {
		u.Assign(allocator.Holding{Owner: "ns/holder", Namespace: "ns", Ports: []allocator.Port{{Number: 80, Protocol: "TCP"}}, Addrs: addrs("192.0.2.1")})
	}
	tests := []struct {
		name      string
		config    map[string]string
		usage     func(*allocator.Usage)
		opts      Options
		svc       *corev1.Service
		action    Action
		addrs     string // the annotation written, or the holding
		lbIP      string
		reason    string // first event's reason
		msg       string // substring of the first event's message
		allocated bool
		noWrite   bool
		// unfinalized: the write removes the load-balancer-cleanup
		// finalizer and keeps every other.
		unfinalized bool
		// second and secondMsg: the second event's reason and message.
		second, secondMsg string
		// clearsLBIP: the write empties spec.loadBalancerIP.
		clearsLBIP bool
		// contested: the holding is marked Contested.
		contested bool
		// exclusive: the holding is marked Exclusive (never shared).
		exclusive bool
	}{
		{name: "new Service gets the lowest address", config: pool, svc: svc("ns", "a"),
			action: Write, addrs: "192.0.2.1", lbIP: "192.0.2.1", reason: ReasonAddressAssigned, msg: `from pool "global"`, allocated: true},
		{name: "the next Service skips a held address", config: pool, usage: held, svc: svc("ns", "a"),
			action: Write, addrs: "192.0.2.2", lbIP: "192.0.2.2", reason: ReasonAddressAssigned, allocated: true},
		{name: "annotation and label set: held, nothing written", config: pool,
			svc: svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "192.0.2.5"), annotated(AnnotationServiceInterface, "eth1"),
				labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Hold, addrs: "192.0.2.5", noWrite: true},
		{name: "annotation set by the user: labelled as ours", config: pool, svc: svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "192.0.2.5")),
			action: Write, reason: ReasonAddressAssigned, msg: "assigned 192.0.2.5, as requested in annotation kube-vip.io/loadbalancerIPs"},
		{name: "spec.loadBalancerIP only: annotation filled in", config: pool, svc: svc("ns", "a", lbIP("192.0.2.6")),
			action: Write, addrs: "192.0.2.6", lbIP: "192.0.2.6", reason: ReasonAddressAssigned, msg: "assigned 192.0.2.6, as requested in spec.loadBalancerIP"},
		{name: "spec.loadBalancerIP outside the pool: assigned, then reported", config: pool, svc: svc("ns", "a", lbIP("203.0.113.9")),
			action: Write, addrs: "203.0.113.9", lbIP: "203.0.113.9", reason: ReasonAddressAssigned, msg: "as requested",
			second: ReasonAddressOutsidePool, secondMsg: `address 203.0.113.9 is outside the pool of "global"; it is kept`},
		{name: "a requested IPv6 Subnet-Router anycast address in the pool: assigned, the risk reported", config: map[string]string{"cidr-global": "2001:db8:1::/64"},
			svc: svc("ns", "a", lbIP("2001:db8:1::")), action: Write, addrs: "2001:db8:1::", lbIP: "2001:db8:1::", reason: ReasonAddressAssigned, msg: "as requested",
			second: ReasonAddressOutsidePool, secondMsg: "address 2001:db8:1:: is the Subnet-Router anycast address of 2001:db8:1::/64 (RFC 4291 2.6.1): routers on that link answer it too, so traffic may never reach the Service; never assigned automatically, it is kept as requested"},
		{name: "a Subnet-Router anycast address outside the pool: both said in one Event", config: map[string]string{"cidr-global": "192.0.2.0/29"},
			svc:    svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "2001:db8:9::"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Hold, addrs: "2001:db8:9::", reason: ReasonAddressOutsidePool, msg: `address 2001:db8:9:: is outside the pool of "global"; it is kept; address 2001:db8:9:: is the Subnet-Router anycast`, noWrite: true},
		{name: "legacy ipam-address label: kept and annotated", config: pool, svc: svc("ns", "a", labelled(LabelLegacyIPAMAddress, "192.0.2.4")),
			action: Write, addrs: "192.0.2.4"},
		{name: "requested address outside every pool: kept, reported", config: pool,
			svc: svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "203.0.113.9"), annotated(AnnotationServiceInterface, "eth1"),
				labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Hold, addrs: "203.0.113.9", reason: ReasonAddressOutsidePool, msg: "203.0.113.9", noWrite: true},
		{name: "requested address held with the same port: conflict, the request still in use (kube-vip may serve it)", config: pool, usage: held,
			svc: svc("ns", "a", lbIP("192.0.2.1")), action: Hold, addrs: "192.0.2.1", reason: ReasonAllocationFailed, msg: "Conflict", noWrite: true, contested: true},
		{name: "two IPv4 in the annotation: reported, both stay in use", config: pool,
			svc:    svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "10.6.0.1,10.6.0.2")),
			action: Hold, addrs: "10.6.0.1,10.6.0.2", reason: ReasonAllocationFailed, msg: "InvalidRequest", noWrite: true, contested: true, exclusive: true},
		{name: "an address and garbage in the annotation: the address stays in use", config: pool,
			svc:    svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "10.6.0.1,bogus")),
			action: Hold, addrs: "10.6.0.1", reason: ReasonAllocationFailed, msg: "InvalidRequest", noWrite: true, contested: true, exclusive: true},
		{name: "ignored, carrying an address: held exclusively", config: pool,
			svc:    svc("ns", "a", annotated(AnnotationIgnore, "true"), annotated(AnnotationLoadBalancerIPs, "10.1.0.1")),
			action: Hold, addrs: "10.1.0.1", noWrite: true, exclusive: true},
		{name: "another class served on a status address: held exclusively", config: pool,
			svc:    svc("ns", "a", class("example.com/other-lb"), ingress("10.61.0.10")),
			action: Hold, addrs: "10.61.0.10", noWrite: true, exclusive: true},
		{name: "served by another tool (status only): adopted, not moved", config: pool, svc: svc("ns", "a", ingress("192.0.2.5")),
			action: Write, addrs: "192.0.2.5", lbIP: "192.0.2.5", reason: ReasonAddressAssigned, msg: "assigned 192.0.2.5, adopted from status.loadBalancer.ingress"},
		{name: "served by another tool outside every pool: adopted and reported", config: pool, svc: svc("ns", "a", ingress("198.51.100.9")),
			action: Write, addrs: "198.51.100.9", lbIP: "198.51.100.9", reason: ReasonAddressAssigned, msg: "adopted", second: ReasonAddressOutsidePool,
			secondMsg: `address 198.51.100.9 is outside the pool of "global"; it is kept`},
		{name: "MetalLB's request annotation is a request", config: pool, svc: svc("ns", "a", annotated(AnnotationMetalLBIPs, "192.0.2.4")),
			action: Write, addrs: "192.0.2.4", reason: ReasonAddressAssigned, msg: "as requested in annotation metallb.io/loadBalancerIPs"},
		{name: "older MetalLB's request annotation is a request", config: pool, svc: svc("ns", "a", annotated(AnnotationMetalLBLegacyIPs, "192.0.2.4")),
			action: Write, addrs: "192.0.2.4", reason: ReasonAddressAssigned, msg: "as requested in annotation metallb.universe.tf/loadBalancerIPs"},
		{name: "Cilium's request annotation is a request", config: pool, svc: svc("ns", "a", annotated(AnnotationCiliumIPs, "192.0.2.4")),
			action: Write, addrs: "192.0.2.4", reason: ReasonAddressAssigned, msg: "as requested in annotation lbipam.cilium.io/ips"},
		{name: "our annotation before MetalLB's", config: pool,
			svc:    svc("ns", "a", annotated(AnnotationMetalLBIPs, "192.0.2.4"), annotated(AnnotationLoadBalancerIPs, "192.0.2.5")),
			action: Write, reason: ReasonAddressAssigned, msg: "assigned 192.0.2.5, as requested in annotation kube-vip.io/loadbalancerIPs"},
		{name: "DHCP pool, IPv6 SingleStack: the marker is IPv4", config: map[string]string{"cidr-global": "0.0.0.0/32"},
			svc: svc("ns", "a", dualStack(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)), action: Fail, reason: ReasonAllocationFailed, msg: "FamilyUnavailable"},
		{name: "requested address held on other ports: shared", config: pool, usage: held, svc: svc("ns", "a", lbIP("192.0.2.1"), portsOf(443)),
			action: Write, addrs: "192.0.2.1"},
		{name: "carried address in conflict: reported, still in use", config: pool, usage: held,
			svc:    svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Hold, addrs: "192.0.2.1", reason: ReasonAllocationFailed, msg: "Conflict", noWrite: true, contested: true},
		{name: "malformed annotation: reported, not overwritten", config: pool, svc: svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "banana")),
			action: Fail, reason: ReasonAllocationFailed, msg: "banana"},
		{name: "no pool", config: map[string]string{"cidr-other": "192.0.2.0/29"}, svc: svc("ns", "a"),
			action: Fail, reason: ReasonAllocationFailed, msg: "NoPool"},
		{name: "exhausted", config: map[string]string{"range-global": "192.0.2.1-192.0.2.1"}, usage: held, svc: svc("ns", "a"),
			action: Fail, reason: ReasonAllocationFailed, msg: "PoolExhausted"},
		{name: "DHCP pool gives 0.0.0.0", config: map[string]string{"cidr-global": "0.0.0.0/32"}, svc: svc("ns", "a"),
			action: Write, addrs: "0.0.0.0", lbIP: "0.0.0.0", reason: ReasonAddressAssigned, allocated: true},
		{name: "DHCP pool: an address leased by kube-vip is not reported as outside", config: map[string]string{"cidr-global": "0.0.0.0/32"},
			svc:    svc("ns", "a", annotated(AnnotationLoadBalancerIPs, "198.51.100.7"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Hold, addrs: "198.51.100.7", noWrite: true},
		{name: "another loadBalancerClass: untouched", config: pool, svc: svc("ns", "a", class("example.com/x")), action: None},
		{name: "another class with an address: held exclusively, never written", config: pool, svc: svc("ns", "a", class("example.com/x"), lbIP("192.0.2.3")),
			action: Hold, addrs: "192.0.2.3", noWrite: true, exclusive: true},
		{name: "ignored", config: pool, svc: svc("ns", "a", annotated(AnnotationIgnore, "true")), action: None},
		{name: "class enabled: our class handled", config: pool, opts: Options{EnableLoadBalancerClass: true},
			svc: svc("ns", "a", class(DefaultLoadBalancerClass)), action: Write, addrs: "192.0.2.1", allocated: true, reason: ReasonAddressAssigned},
		{name: "class enabled: no class untouched", config: pool, opts: Options{EnableLoadBalancerClass: true}, svc: svc("ns", "a"), action: None},
		{name: "class enabled with a custom name", config: pool, opts: Options{EnableLoadBalancerClass: true, LoadBalancerClass: "example.com/mine"},
			svc: svc("ns", "a", class("example.com/mine")), action: Write, addrs: "192.0.2.1", allocated: true, reason: ReasonAddressAssigned},
		{name: "ClusterIP Service: nothing", config: pool, svc: svc("ns", "a", typ(corev1.ServiceTypeClusterIP)), action: None},
		{name: "type changed away: our marks removed", config: pool,
			svc:    svc("ns", "a", typ(corev1.ServiceTypeClusterIP), annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Release, reason: ReasonAddressReleased},
		{name: "type changed away: spec.loadBalancerIP we wrote is emptied with the marks", config: pool,
			svc:    svc("ns", "a", typ(corev1.ServiceTypeClusterIP), lbIP("192.0.2.1"), annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Release, reason: ReasonAddressReleased, clearsLBIP: true},
		{name: "type changed away: spec.loadBalancerIP spelled otherwise is emptied too", config: pool,
			svc:    svc("ns", "a", typ(corev1.ServiceTypeClusterIP), lbIP("2001:DB8::0001"), annotated(AnnotationLoadBalancerIPs, "192.0.2.1,2001:db8::1"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Release, reason: ReasonAddressReleased, clearsLBIP: true},
		{name: "class enabled, type changed away (the API server cleared the class): our marks removed", config: pool, opts: Options{EnableLoadBalancerClass: true},
			svc:    svc("ns", "a", typ(corev1.ServiceTypeClusterIP), finalized, lbIP("192.0.2.1"), annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Release, reason: ReasonAddressReleased, clearsLBIP: true, unfinalized: true},
		{name: "class enabled, type changed away, never ours: the finalizer is not ours to judge", config: pool, opts: Options{EnableLoadBalancerClass: true},
			svc: svc("ns", "a", typ(corev1.ServiceTypeClusterIP), finalized), action: None},
		{name: "deleted and ignored: its finalizer left alone", config: pool,
			svc: svc("ns", "a", deleting, finalized, annotated(AnnotationIgnore, "true")), action: None},
		{name: "type changed away: the existing provider's finalizer removed with our marks", config: pool,
			svc:    svc("ns", "a", typ(corev1.ServiceTypeClusterIP), finalized, annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Release, reason: ReasonAddressReleased, unfinalized: true},
		{name: "type changed away, no marks: the finalizer removed", config: pool, svc: svc("ns", "a", typ(corev1.ServiceTypeNodePort), finalized),
			action: Release, unfinalized: true},
		{name: "deleted with the existing provider's finalizer: removed", config: pool,
			svc:    svc("ns", "a", deleting, finalized, annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: Release, unfinalized: true},
		{name: "deleted, another class: its finalizer is not ours", config: pool, svc: svc("ns", "a", deleting, finalized, class("example.com/x")),
			action: None},
		{name: "type changed away, ignored: marks left alone", config: pool,
			svc:    svc("ns", "a", typ(corev1.ServiceTypeClusterIP), annotated(AnnotationIgnore, "true"), annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: None},
		{name: "type changed away, another class: marks left alone", config: pool,
			svc:    svc("ns", "a", typ(corev1.ServiceTypeClusterIP), class("example.com/x"), annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), labelled(LabelImplementation, ImplementationKubeVIP)),
			action: None},
		{name: "prefer dual-stack on an IPv4 pool: assigned, and the missing IPv6 reported", config: pool,
			svc:    svc("ns", "a", dualStack(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)),
			action: Write, addrs: "192.0.2.1", lbIP: "192.0.2.1", reason: ReasonAddressAssigned, allocated: true,
			second: ReasonAllocationFailed, secondMsg: `FamilyUnavailable: pool "global" has no IPv6 addresses; ipFamilyPolicy PreferDualStack: assigned 192.0.2.1 only`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustConfig(t, tc.config)
			u := allocator.NewUsage()
			if tc.usage != nil {
				tc.usage(u)
			}
			before := tc.svc.DeepCopy()
			d := Decide(cfg, u, tc.svc, tc.opts)
			if d.Action != tc.action {
				t.Fatalf("action = %v, want %v (events %v, err %v)", d.Action, tc.action, d.Events, d.Err)
			}
			if tc.svc.ResourceVersion != before.ResourceVersion || len(tc.svc.Annotations) != len(before.Annotations) {
				t.Fatal("Decide changed its input")
			}
			if d.Allocated != tc.allocated {
				t.Errorf("allocated = %v, want %v", d.Allocated, tc.allocated)
			}
			if tc.action == Write && d.Service == nil {
				t.Fatal("Write without a Service to write")
			}
			if tc.noWrite && d.Service != nil {
				t.Errorf("unexpected write %v", d.Service.Annotations)
			}
			if tc.addrs != "" {
				if got := JoinAddrs(append(slices.Clone(d.Holding.Addrs), d.Holding.Also...)); got != tc.addrs {
					t.Errorf("holding = %q, want %q", got, tc.addrs)
				}
				if d.Service != nil {
					if got := d.Service.Annotations[AnnotationLoadBalancerIPs]; got != tc.addrs {
						t.Errorf("annotation = %q, want %q", got, tc.addrs)
					}
				}
			}
			if d.Service != nil && d.Service.Labels[LabelLegacyIPAMAddress] != "" {
				t.Errorf("legacy label %s kept after the annotation was written", LabelLegacyIPAMAddress)
			}
			if tc.lbIP != "" && d.Service.Spec.LoadBalancerIP != tc.lbIP {
				t.Errorf("spec.loadBalancerIP = %q, want %q", d.Service.Spec.LoadBalancerIP, tc.lbIP)
			}
			if tc.allocated {
				if d.Service.Labels[LabelImplementation] != ImplementationKubeVIP {
					t.Errorf("label implementation = %q", d.Service.Labels[LabelImplementation])
				}
				if _, ok := tc.config["interface-global"]; ok && d.Service.Annotations[AnnotationServiceInterface] != "eth1" {
					t.Errorf("serviceInterface = %q, want eth1", d.Service.Annotations[AnnotationServiceInterface])
				}
			}
			if tc.clearsLBIP && (d.Service == nil || d.Service.Spec.LoadBalancerIP != "") {
				t.Errorf("write %v, want spec.loadBalancerIP emptied", d.Service)
			}
			if d.Holding.Contested != tc.contested {
				t.Errorf("holding contested = %v, want %v", d.Holding.Contested, tc.contested)
			}
			if d.Holding.Exclusive != tc.exclusive {
				t.Errorf("holding exclusive = %v, want %v", d.Holding.Exclusive, tc.exclusive)
			}
			if tc.unfinalized {
				if d.Service == nil || len(d.Service.Finalizers) != 1 || d.Service.Finalizers[0] != "example.com/keep" {
					t.Fatalf("write %v, want the finalizers [example.com/keep]", d.Service)
				}
			} else if d.Service != nil && len(d.Service.Finalizers) != len(tc.svc.Finalizers) {
				t.Errorf("finalizers changed to %v", d.Service.Finalizers)
			}
			if tc.second != "" {
				if len(d.Events) != 2 || d.Events[1].Reason != tc.second || d.Events[1].Type != EventWarning || d.Events[1].Message != tc.secondMsg {
					t.Errorf("events = %+v, want a second Warning %s %q", d.Events, tc.second, tc.secondMsg)
				}
			} else if len(d.Events) > 1 {
				t.Errorf("unexpected events %+v", d.Events)
			}
			if tc.reason == "" {
				if len(d.Events) != 0 && tc.action != Write {
					t.Errorf("unexpected events %v", d.Events)
				}
				return
			}
			if len(d.Events) == 0 || d.Events[0].Reason != tc.reason || !strings.Contains(d.Events[0].Message, tc.msg) {
				t.Fatalf("events = %+v, want %s containing %q", d.Events, tc.reason, tc.msg)
			}
			if tc.action == Release && d.Service != nil {
				if d.Service.Annotations[AnnotationLoadBalancerIPs] != "" || d.Service.Labels[LabelImplementation] != "" {
					t.Errorf("marks not removed: %v %v", d.Service.Annotations, d.Service.Labels)
				}
			}
		})
	}
}

func TestFailCarriesTypedError(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"cidr-elsewhere": "192.0.2.0/30"})
	d := Decide(cfg, allocator.NewUsage(), svc("ns", "a"), Options{})
	var ae *allocator.Error
	if !errors.As(d.Err, &ae) || ae.Reason != allocator.ReasonNoPool {
		t.Fatalf("err = %v, want an *allocator.Error with reason NoPool", d.Err)
	}
}

func TestLedgerReservesAndIgnoresStaleCopies(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.1-192.0.2.3"})
	l := NewLedger(nil)
	a := svc("ns", "a", rv("5"))
	da := l.Decide(cfg, a, Options{})
	if da.Action != Write || JoinAddrs(da.Holding.Addrs) != "192.0.2.1" {
		t.Fatalf("a: %v %v", da.Action, da.Holding.Addrs)
	}
	// While a's write is in flight, b must not get a's address.
	db := l.Decide(cfg, svc("ns", "b", rv("6")), Options{})
	if JoinAddrs(db.Holding.Addrs) != "192.0.2.2" {
		t.Fatalf("b got %v while a's write was in flight", db.Holding.Addrs)
	}
	l.Written(da, "7")
	if !l.Stale(a) {
		t.Fatal("a's cached copy (rv 5) is older than our write (rv 7): it must be stale")
	}
	fresh := a.DeepCopy()
	fresh.ResourceVersion = "7"
	fresh.Annotations, fresh.Labels = da.Service.Annotations, da.Service.Labels
	if l.Stale(fresh) {
		t.Fatal("the copy at our write's rv is not stale")
	}
	if d := l.Decide(cfg, fresh, Options{}); d.Action != Hold {
		t.Fatalf("a once the cache shows our write: %v", d.Action)
	}
	// b's write fails: its reservation is undone, the address is free again.
	l.WriteFailed(db)
	if _, ok := l.Usage().Holding("ns/b"); ok {
		t.Fatal("b still holds an address after its write failed")
	}
	dc := l.Decide(cfg, svc("ns", "c", rv("8")), Options{})
	if JoinAddrs(dc.Holding.Addrs) != "192.0.2.2" {
		t.Fatalf("c = %v, want the address b's failed write left free", dc.Holding.Addrs)
	}
	// A failed write of an address the Service already carried keeps it held.
	d := svc("ns", "d", lbIP("192.0.2.3"), rv("9"))
	dd := l.Decide(cfg, d, Options{})
	if dd.Action != Write || dd.Allocated {
		t.Fatalf("d: %v allocated=%v", dd.Action, dd.Allocated)
	}
	l.WriteFailed(dd)
	if h, ok := l.Usage().Holding("ns/d"); !ok || JoinAddrs(h.Addrs) != "192.0.2.3" {
		t.Fatal("d lost its own address when filling in the annotation failed")
	}
	l.Forget("ns/a")
	if _, ok := l.Usage().Holding("ns/a"); ok {
		t.Fatal("a still held after Forget")
	}
}

// TestLedgerKeepsTheAddressOfAWriteOfUnknownOutcome: a write whose answer
// was lost may have landed, so its address stays reserved until a fresh
// read says; then the ledger follows that read.
func TestLedgerKeepsTheAddressOfAWriteOfUnknownOutcome(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.1-192.0.2.3"})
	for _, landed := range []bool{true, false} {
		l := NewLedger(nil)
		a := svc("ns", "a", rv("5"))
		da := l.Decide(cfg, a, Options{})
		l.WriteUncertain(da)
		if pending, ok := l.Uncertain("ns/a"); !ok || pending.Service != da.Service {
			t.Fatal("a is not Uncertain, with its decision, after a write of unknown outcome")
		}
		if db := l.Decide(cfg, svc("ns", "b", rv("6")), Options{}); JoinAddrs(db.Holding.Addrs) != "192.0.2.2" {
			t.Fatalf("b got %v: a's address was freed while its write may have landed", db.Holding.Addrs)
		}
		live := a.DeepCopy()
		if landed {
			live = da.Service.DeepCopy()
			live.ResourceVersion = "7"
		}
		if da.Landed(live) != landed {
			t.Fatalf("Landed = %v for a write that landed=%v", !landed, landed)
		}
		d := l.Decide(cfg, live, Options{})
		if _, ok := l.Uncertain("ns/a"); ok {
			t.Fatal("still Uncertain after a fresh read")
		}
		h, _ := l.Usage().Holding("ns/a")
		switch {
		case landed && (d.Action != Hold || JoinAddrs(h.Addrs) != "192.0.2.1"):
			t.Fatalf("the write landed: %v holding %v, want Hold of 192.0.2.1", d.Action, h.Addrs)
		case !landed && (d.Action != Write || JoinAddrs(h.Addrs) != "192.0.2.1"):
			t.Fatalf("the write was lost: %v holding %v, want a new Write of the free 192.0.2.1", d.Action, h.Addrs)
		}
		l.Forget("ns/a")
		if _, ok := l.Uncertain("ns/a"); ok {
			t.Fatal("Uncertain after Forget")
		}
	}
}

func TestRebuildGrantedAddressBeatsAnOlderRequest(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"cidr-global": "192.0.2.0/29"})
	// The older Service asked for .3 and was refused; the newer one was
	// given .3 (it carries the annotation). A restart must not swap them.
	refused := svc("ns", "refused", lbIP("192.0.2.3"), created(100))
	granted := svc("ns", "granted", annotated(AnnotationLoadBalancerIPs, "192.0.2.3"), created(200))
	u, conflicts := Rebuild(cfg, []*corev1.Service{refused, granted}, Options{})
	if h, _ := u.Holding("ns/granted"); JoinAddrs(h.Addrs) != "192.0.2.3" || h.Contested {
		t.Fatalf("granted holds %v (contested %v), want .3 as its own", h.Addrs, h.Contested)
	}
	// The refused request keeps .3 in use too (kube-vip may serve it), but
	// only as contested: it never beats the granted Service.
	if h, _ := u.Holding("ns/refused"); len(h.Addrs) != 0 || JoinAddrs(h.Also) != "192.0.2.3" {
		t.Fatalf("refused holds %v also %v, want .3 only as also", h.Addrs, h.Also)
	}
	if _, ok := conflicts["ns/refused"]; !ok {
		t.Fatalf("conflicts = %v, want the refused request", conflicts)
	}
}

func TestRebuildReservesAddressOfAPendingRelease(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"cidr-global": "192.0.2.0/29"})
	// Turned into a ClusterIP; our marks not removed yet.
	pending := svc("ns", "pending", typ(corev1.ServiceTypeClusterIP), annotated(AnnotationLoadBalancerIPs, "192.0.2.1"),
		labelled(LabelImplementation, ImplementationKubeVIP))
	u, _ := Rebuild(cfg, []*corev1.Service{pending}, Options{})
	if got := u.Holders(netip.MustParseAddr("192.0.2.1")); len(got) != 1 {
		t.Fatalf("holders of .1 = %v: the address of a pending release must stay reserved", got)
	}
}

func TestRebuildOlderServiceKeepsContestedAddress(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"cidr-global": "192.0.2.0/29"})
	older := svc("ns", "zz-older", annotated(AnnotationLoadBalancerIPs, "192.0.2.3"), created(100))
	newer := svc("ns", "aa-newer", annotated(AnnotationLoadBalancerIPs, "192.0.2.3"), created(200))
	other := svc("ns", "other", annotated(AnnotationLoadBalancerIPs, "192.0.2.4"), created(150))
	waiting := svc("ns", "waiting", created(50))
	u, conflicts := Rebuild(cfg, []*corev1.Service{newer, waiting, older, other}, Options{})
	// Both carry .3 in their annotation, so both keep it in use; the newer
	// one is the conflict that gets reported.
	if got := u.Holders(netip.MustParseAddr("192.0.2.3")); len(got) != 2 {
		t.Fatalf("holders of .3 = %v, want both carriers", got)
	}
	if _, ok := conflicts["ns/aa-newer"]; !ok || len(conflicts) != 1 {
		t.Fatalf("conflicts = %v, want the newer Service", conflicts)
	}
	// Both carry .3 in their annotation: the address stays in use even
	// when the older one goes.
	u.Release("ns/zz-older")
	if got := u.Holders(netip.MustParseAddr("192.0.2.3")); len(got) != 1 || got[0] != "ns/aa-newer" {
		t.Fatalf("holders of .3 after the older left = %v, want the newer one", got)
	}
	if _, ok := u.Holding("ns/waiting"); ok {
		t.Fatal("a Service without an address was given one by Rebuild")
	}
	if u.Len() != 2 {
		t.Fatalf("%d holders, want 2 (other, and aa-newer still carrying .3)", u.Len())
	}
}

// TestTwoCarriersAfterARestart: two Services carry one address in their
// annotation with colliding ports. After a restart the older keeps it, in
// whatever order the Services are then decided, and only the newer is told
// of the conflict; once the older is gone, the newer is no longer in conflict.
func TestTwoCarriersAfterARestart(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"cidr-global": "192.0.2.0/29"})
	older := svc("ns", "older", annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), created(100))
	newer := svc("ns", "newer", annotated(AnnotationLoadBalancerIPs, "192.0.2.1"), created(200))
	for _, order := range [][]*corev1.Service{{older, newer}, {newer, older}} {
		u, _ := Rebuild(cfg, []*corev1.Service{newer, older}, Options{})
		l := NewLedger(u)
		got := map[string]error{}
		for _, s := range order {
			got[Key(s)] = l.Decide(cfg, s, Options{}).Err
		}
		if got["ns/older"] != nil || got["ns/newer"] == nil || !strings.Contains(got["ns/newer"].Error(), "held by ns/older") {
			t.Fatalf("deciding %s first: older %v, newer %v; want only newer in conflict, with older", Key(order[0]), got["ns/older"], got["ns/newer"])
		}
		l.Forget("ns/older")
		if d := l.Decide(cfg, newer, Options{}); d.Err != nil || d.Holding.Contested {
			t.Fatalf("newer once older is gone: %v contested=%v", d.Err, d.Holding.Contested)
		}
	}
}

// TestDecideLiveMakesOlderCachedCopiesStale: once a live read has settled
// an uncertain write, a lagging cache's older copy must not be decided on:
// it would allocate again, and the refused write that follows would free
// the address the Service really carries.
func TestDecideLiveMakesOlderCachedCopiesStale(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.1-192.0.2.3"})
	l := NewLedger(nil)
	cached := svc("ns", "a", rv("10"))
	d := l.Decide(cfg, cached, Options{})
	l.WriteUncertain(d)
	live := d.Service.DeepCopy()
	live.ResourceVersion = "11"
	if got := l.DecideLive(cfg, live, Options{}); got.Action != Hold {
		t.Fatalf("live copy showing the write: %v, want Hold", got.Action)
	}
	if !l.Stale(cached) {
		t.Fatal("the cached copy (rv 10) older than the live read (rv 11) is not Stale")
	}
	if l.Stale(live) {
		t.Fatal("the live copy itself is Stale")
	}
	if db := l.Decide(cfg, svc("ns", "b", rv("12")), Options{}); JoinAddrs(db.Holding.Addrs) != "192.0.2.2" {
		t.Fatalf("b got %v, want 192.0.2.2: a keeps 192.0.2.1", db.Holding.Addrs)
	}
}

// TestObservedCopyMakesOlderCachedCopiesStale: a copy read live (after a
// refused write, say) shows an address a user gave the Service; the cache
// lags behind. Deciding on the older cached copy would drop that address
// from the ledger and give it to another Service: the older copy is Stale.
func TestObservedCopyMakesOlderCachedCopiesStale(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.1-192.0.2.3"})
	l := NewLedger(nil)
	cached := svc("ns", "a", rv("10"))
	live := svc("ns", "a", rv("11"), annotated(AnnotationLoadBalancerIPs, "192.0.2.1"))
	l.Observe(live, Options{})
	if !l.Stale(cached) {
		t.Fatal("the cached copy (rv 10) older than the observed one (rv 11) is not Stale")
	}
	if l.Stale(live) {
		t.Fatal("the observed copy itself is Stale")
	}
	l.Observe(cached, Options{}) // a late cache event changes nothing
	if !l.Stale(cached) {
		t.Fatal("observing the older copy made it fresh again")
	}
	if db := l.Decide(cfg, svc("ns", "b", rv("12")), Options{}); JoinAddrs(db.Holding.Addrs) != "192.0.2.2" {
		t.Fatalf("b got %v, want 192.0.2.2: a is served on 192.0.2.1", db.Holding.Addrs)
	}
}

// TestObserveReservesWhatAServiceCarriesBeforeItsTurn: a Service that
// appears carrying an address is reserved as soon as the cache shows it,
// yields to the Service that held the address first, and is settled when
// it is decided.
func TestObserveReservesWhatAServiceCarriesBeforeItsTurn(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"range-global": "192.0.2.1-192.0.2.3"})
	l := NewLedger(nil)
	first := svc("ns", "first", rv("5"))
	df := l.Decide(cfg, first, Options{})
	l.Written(df, "6")
	carrier := svc("ns", "carrier", rv("7"), annotated(AnnotationLoadBalancerIPs, "192.0.2.2"))
	l.Observe(carrier, Options{})
	if d := l.Decide(cfg, svc("ns", "auto", rv("8")), Options{}); JoinAddrs(d.Holding.Addrs) != "192.0.2.3" {
		t.Fatalf("auto got %v: the observed 192.0.2.2 was not reserved", d.Holding.Addrs)
	}
	// One observed carrying what first holds does not take it from first.
	late := svc("ns", "late", rv("9"), annotated(AnnotationLoadBalancerIPs, "192.0.2.1"))
	l.Observe(late, Options{})
	fresh := df.Service.DeepCopy()
	fresh.ResourceVersion = "6"
	if d := l.Decide(cfg, fresh, Options{}); d.Action != Hold || d.Err != nil {
		t.Fatalf("first after late was observed: %v %v, want a plain Hold", d.Action, d.Err)
	}
	if d := l.Decide(cfg, late, Options{}); d.Err == nil || !d.Holding.Contested {
		t.Fatalf("late: %v contested=%v, want a conflict with first", d.Err, d.Holding.Contested)
	}
	// Observing never frees what a Service holds (an address it no
	// longer carries is only served on, until it is decided), and
	// ignores what is not a LoadBalancer.
	l.Observe(svc("ns", "first", rv("10")), Options{})
	if h, ok := l.Usage().Holding("ns/first"); !ok || len(h.Addrs) != 0 || JoinAddrs(h.Also) != "192.0.2.1" {
		t.Fatalf("first holds %v also %v after an observation without the annotation, want 192.0.2.1 as also", h.Addrs, h.Also)
	}
	l.Observe(svc("ns", "cip", typ(corev1.ServiceTypeClusterIP), annotated(AnnotationLoadBalancerIPs, "192.0.2.3")), Options{})
	if _, ok := l.Usage().Holding("ns/cip"); ok {
		t.Fatal("a ClusterIP Service was reserved")
	}
}

func TestObserveReservesEverythingAServiceIsServedOn(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"range-global": "10.0.0.1-10.0.0.4"})
	l := NewLedger(nil)
	l.Observe(svc("ns", "bad", annotated(AnnotationLoadBalancerIPs, "10.0.0.1,bogus")), Options{})
	l.Observe(svc("ns", "other", class("example.com/other-lb"), ingress("10.0.0.2")), Options{})
	l.Observe(svc("ns", "ignored", annotated(AnnotationIgnore, "true"), lbIP("10.0.0.3")), Options{})
	d := l.Decide(cfg, svc("ns", "new"), Options{})
	if JoinAddrs(d.Holding.Addrs) != "10.0.0.4" {
		t.Fatalf("new got %v, want 10.0.0.4: the others are served on .1-.3", d.Holding.Addrs)
	}
}

func TestOursFollowsWhatTheServiceAsksForNow(t *testing.T) {
	dual := map[string]string{"cidr-global": "192.168.1.8/29,2001:db8::8/125", "interface-global": "eth1"}
	ours := func(addrs string, opts ...svcOpt) *corev1.Service {
		base := []svcOpt{annotated(AnnotationLoadBalancerIPs, addrs), annotated(AnnotationServiceInterface, "eth1"),
			labelled(LabelImplementation, ImplementationKubeVIP)}
		return svc("ns", "a", append(base, opts...)...)
	}
	single := corev1.IPFamilyPolicySingleStack
	for _, tc := range []struct {
		name   string
		config map[string]string
		svc    *corev1.Service
		held   *allocator.Holding
		action Action
		// annotation and lbIP the write carries; event, a substring of an
		// Event; err, whether the decision reports an error.
		annotation, lbIP, event string
		waits, err              bool
	}{
		{name: "SingleStack to RequireDualStack: the IPv6 address added, the IPv4 kept", config: dual,
			svc:    ours("192.168.1.12", lbIP("192.168.1.12"), dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)),
			action: Write, annotation: "192.168.1.12,2001:db8::8", lbIP: "192.168.1.12", event: "added 2001:db8::8"},
		{name: "PreferDualStack to SingleStack: the IPv6 address released", config: dual,
			svc:    ours("192.168.1.10,2001:db8::a", lbIP("192.168.1.10"), dualStack(single, corev1.IPv4Protocol)),
			action: Write, annotation: "192.168.1.10", lbIP: "192.168.1.10", event: "released 2001:db8::a"},
		{name: "PreferDualStack fell back, the pool gains IPv6: upgraded", config: dual,
			svc:    ours("192.168.1.10", lbIP("192.168.1.10"), dualStack(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)),
			action: Write, annotation: "192.168.1.10,2001:db8::8", event: "added"},
		{name: "RequireDualStack that cannot be met keeps what it has and reports", config: map[string]string{"cidr-global": "192.168.1.8/29"},
			svc:    ours("192.168.1.12", dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)),
			action: Hold, event: "keeps 192.168.1.12", waits: true, err: true},
		{name: "PreferDualStack that cannot be upgraded waits, no error", config: map[string]string{"cidr-global": "192.168.1.8/29"},
			svc:    ours("192.168.1.12", dualStack(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)),
			action: Hold, event: "assigned 192.168.1.12 only", waits: true},
		{name: "the user moved the annotation: spec.loadBalancerIP follows", config: dual,
			svc:    ours("192.168.1.13", lbIP("192.168.1.9")),
			action: Write, annotation: "192.168.1.13", lbIP: "192.168.1.13", event: "it named 192.168.1.9"},
		{name: "interface-<ns> changed: the annotation follows", config: map[string]string{"cidr-global": "192.168.1.8/29", "interface-global": "eth2"},
			svc: ours("192.168.1.12"), action: Write, annotation: "192.168.1.12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustConfig(t, tc.config)
			d := Decide(cfg, allocator.NewUsage(), tc.svc, Options{})
			if d.Action != tc.action || d.Waits != tc.waits || (d.Err != nil) != tc.err {
				t.Fatalf("action %v waits %v err %v (events %v), want %v %v %v", d.Action, d.Waits, d.Err, d.Events, tc.action, tc.waits, tc.err)
			}
			if tc.action == Write {
				if got := d.Service.Annotations[AnnotationLoadBalancerIPs]; got != tc.annotation {
					t.Errorf("annotation %q, want %q", got, tc.annotation)
				}
				if tc.lbIP != "" && d.Service.Spec.LoadBalancerIP != tc.lbIP {
					t.Errorf("spec.loadBalancerIP %q, want %q", d.Service.Spec.LoadBalancerIP, tc.lbIP)
				}
				if iface := cfg.Interface("ns"); d.Service.Annotations[AnnotationServiceInterface] != iface {
					t.Errorf("serviceInterface %q, want %q", d.Service.Annotations[AnnotationServiceInterface], iface)
				}
			}
			if tc.event != "" && !slices.ContainsFunc(d.Events, func(e Event) bool { return strings.Contains(e.Message, tc.event) }) {
				t.Errorf("events %v, want one containing %q", d.Events, tc.event)
			}
		})
	}
}

func TestAssignedSharedAddressNamesWhoItIsSharedWith(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"cidr-global": "192.168.1.8/30", "allow-share-global": "true"})
	u := allocator.NewUsage()
	u.Assign(allocator.Holding{Owner: "ns/web", Namespace: "ns", Ports: []allocator.Port{{Number: 80, Protocol: "TCP"}}, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.9")}})
	d := Decide(cfg, u, svc("ns", "dns", portsOf(53)), Options{})
	if d.Action != Write || len(d.Events) == 0 || !strings.Contains(d.Events[0].Message, "sharing 192.168.1.9 with ns/web") {
		t.Fatalf("%v %v, want a Write whose AddressAssigned names ns/web", d.Action, d.Events)
	}
}
