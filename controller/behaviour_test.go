package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

func TestBadConfigKeepsLastGoodThenFixed(t *testing.T) {
	h := newHarness(t, map[string]string{"cidr-global": "192.0.2.128/29"})
	h.start(nil)
	h.create("before")
	if got := h.addressOf(h.ns, "before"); got != "192.0.2.128" {
		t.Fatalf("before = %q, want 192.0.2.128", got)
	}
	// A typo: the key is reported, its last good value keeps serving.
	h.setConfig(map[string]string{"cidr-global": "192.0.2.128/33"})
	ev := h.waitEvent(h.cmNS, "ConfigMap", h.cmName, decide.ReasonInvalidConfig, "cidr-global")
	if !strings.Contains(ev.Message, "192.0.2.128/33") || !strings.Contains(ev.Message, "192.0.2.128/29") {
		t.Errorf("event %q should name the bad value and the value kept", ev.Message)
	}
	if ev.Type != corev1.EventTypeWarning {
		t.Errorf("event type %q, want Warning", ev.Type)
	}
	h.create("during")
	if got := h.addressOf(h.ns, "during"); got != "192.0.2.129" {
		t.Fatalf("during = %q, want 192.0.2.129 from the last good pool", got)
	}
	// Other keys change, the typo stays: it is not reported again. (That
	// the controller has seen the change shows in the interface it writes.)
	for i, iface := range []string{"eth1", "eth2"} {
		h.setConfig(map[string]string{"cidr-global": "192.0.2.128/33", "interface-global": iface})
		name := fmt.Sprintf("iface%d", i)
		h.create(name)
		h.eventually(10*time.Second, name+" with interface "+iface, func() (bool, string) {
			got := h.get(h.ns, name).Annotations[decide.AnnotationServiceInterface]
			return got == iface, got
		})
	}
	for _, e := range events(h.cmNS, "ConfigMap", h.cmName) {
		if e.Reason == decide.ReasonInvalidConfig && e.Count != 1 {
			t.Errorf("InvalidConfig %q recorded %d times; once is enough while the value stays", e.Message, e.Count)
		}
	}
	if got := h.get(h.ns, "before").Annotations[decide.AnnotationLoadBalancerIPs]; got != "192.0.2.128" {
		t.Fatalf("before lost its address: %q", got)
	}
	// Fixed: the new pool serves; assigned addresses outside it are kept
	// and reported.
	h.setConfig(map[string]string{"cidr-global": "198.51.100.16/29"})
	h.create("after")
	if got := h.addressOf(h.ns, "after"); got != "198.51.100.16" {
		t.Fatalf("after = %q, want 198.51.100.16", got)
	}
	h.waitEvent(h.ns, "Service", "before", decide.ReasonAddressOutsidePool, "192.0.2.128")
	if got := h.get(h.ns, "before").Annotations[decide.AnnotationLoadBalancerIPs]; got != "192.0.2.128" {
		t.Fatalf("before lost its address after the pool changed: %q", got)
	}
}

func TestNoPoolThenConfigMapCreated(t *testing.T) {
	h := newHarness(t, nil)
	// A back-off of a minute: only the immediate retry on a freed address
	// (or a new ConfigMap) can give the waiting Service its address in time.
	h.start(func(o *controller.Options) { o.RetryBaseDelay, o.RetryMaxDelay = time.Minute, time.Minute })
	h.create("early")
	h.waitEvent(h.ns, "Service", "early", decide.ReasonAllocationFailed, "NoPool")
	h.setConfig(map[string]string{"cidr-" + h.ns: "192.0.2.200/30"})
	if got := h.addressOf(h.ns, "early"); got != "192.0.2.200" {
		t.Fatalf("early = %q, want 192.0.2.200 once the pool exists", got)
	}
}

func TestSharingByPortAndProtocol(t *testing.T) {
	h := newHarness(t, nil)
	h.setConfig(map[string]string{"cidr-" + h.ns: "192.0.2.224/29", "allow-share-" + h.ns: "true"})
	h.start(nil)
	h.create("dns-udp", ports("53/UDP"))
	first := h.addressOf(h.ns, "dns-udp")
	h.create("dns-tcp", ports("53/TCP"))
	if got := h.addressOf(h.ns, "dns-tcp"); got != first {
		t.Fatalf("dns-tcp = %q, want to share %s (TCP 53 and UDP 53 do not collide)", got, first)
	}
	h.create("dns-udp2", ports("53/UDP"))
	if got := h.addressOf(h.ns, "dns-udp2"); got == first {
		t.Fatalf("dns-udp2 shares %s with dns-udp: both use 53/UDP", got)
	}
	h.create("web", ports("80/TCP", "443/TCP"))
	if got := h.addressOf(h.ns, "web"); got != first {
		t.Fatalf("web = %q, want to share the lowest shareable %s", got, first)
	}
}

func TestDualStackPolicies(t *testing.T) {
	h := newHarness(t, nil)
	h.setConfig(map[string]string{"range-" + h.ns: "192.0.2.241-192.0.2.246,2001:db8::10-2001:db8::1f"})
	h.start(nil)
	h.create("v6first", dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv6Protocol, corev1.IPv4Protocol))
	if got := h.addressOf(h.ns, "v6first"); got != "2001:db8::10,192.0.2.241" {
		t.Fatalf("RequireDualStack [IPv6, IPv4] = %q, want 2001:db8::10,192.0.2.241", got)
	}
	h.create("prefer", dualStack(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
	if got := h.addressOf(h.ns, "prefer"); got != "192.0.2.242,2001:db8::11" {
		t.Fatalf("PreferDualStack = %q, want 192.0.2.242,2001:db8::11", got)
	}
	if s := h.get(h.ns, "prefer"); s.Spec.LoadBalancerIP != "192.0.2.242" {
		t.Errorf("spec.loadBalancerIP = %q, want the first address", s.Spec.LoadBalancerIP)
	}
	h.create("single6", dualStack(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol))
	if got := h.addressOf(h.ns, "single6"); got != "2001:db8::12" {
		t.Fatalf("SingleStack IPv6 = %q, want 2001:db8::12", got)
	}
	// An IPv4-only pool: PreferDualStack falls back, RequireDualStack fails.
	h.setConfig(map[string]string{"range-" + h.ns: "192.0.2.241-192.0.2.246,2001:db8::10-2001:db8::1f", "cidr-" + h.ns + "x": "192.0.2.0/30"})
	other := h.ns + "x"
	if _, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteServices(other) })
	h.create("fallback", inNamespace(other), dualStack(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
	if got := h.addressOf(other, "fallback"); got != "192.0.2.1" {
		t.Fatalf("PreferDualStack on an IPv4 pool = %q, want 192.0.2.1", got)
	}
	h.create("require", inNamespace(other), dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
	h.waitEvent(other, "Service", "require", decide.ReasonAllocationFailed, "FamilyUnavailable")
}

func TestLoadBalancerClassAndIgnore(t *testing.T) {
	h := newHarness(t, map[string]string{"cidr-global": "192.0.2.32/29"})
	h.start(nil) // default: only Services without a class
	h.create("noclass")
	h.create("other", withClass("example.com/other"))
	h.create("ignored", withAnnotation(decide.AnnotationIgnore, "true"))
	h.addressOf(h.ns, "noclass")
	time.Sleep(500 * time.Millisecond)
	for _, n := range []string{"other", "ignored"} {
		s := h.get(h.ns, n)
		if s.Annotations[decide.AnnotationLoadBalancerIPs] != "" || s.Spec.LoadBalancerIP != "" || len(s.Labels) != 0 {
			t.Errorf("%s was touched: %v %v %q", n, s.Annotations, s.Labels, s.Spec.LoadBalancerIP)
		}
	}
	h.stopController()
	h.start(func(o *controller.Options) { o.Decide.EnableLoadBalancerClass = true })
	h.create("ours", withClass(decide.DefaultLoadBalancerClass))
	h.create("noclass2")
	h.addressOf(h.ns, "ours")
	time.Sleep(500 * time.Millisecond)
	if s := h.get(h.ns, "noclass2"); s.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
		t.Errorf("with loadBalancerClass enabled, a Service without class was given %q", s.Annotations[decide.AnnotationLoadBalancerIPs])
	}
	h.stopController()
	h.start(func(o *controller.Options) {
		o.Decide.EnableLoadBalancerClass = true
		o.Decide.LoadBalancerClass = "example.com/custom"
	})
	h.create("custom", withClass("example.com/custom"))
	h.addressOf(h.ns, "custom")
}

func TestTypeChangeReleasesAddress(t *testing.T) {
	h := newHarness(t, map[string]string{"range-global": "192.0.2.50-192.0.2.50"})
	h.start(nil)
	h.create("a")
	addr := h.addressOf(h.ns, "a")
	h.create("b")
	h.waitEvent(h.ns, "Service", "b", decide.ReasonAllocationFailed, "PoolExhausted")
	// The user turns a into a ClusterIP Service (clearing the deprecated
	// field, which the API server only allows on LoadBalancers).
	s := h.get(h.ns, "a")
	s.Spec.Type = corev1.ServiceTypeClusterIP
	s.Spec.LoadBalancerIP = ""
	s.Spec.AllocateLoadBalancerNodePorts = nil
	if _, err := client.CoreV1().Services(h.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := h.addressOf(h.ns, "b"); got != addr {
		t.Fatalf("b = %q, want the released %s", got, addr)
	}
	h.eventually(10*time.Second, "a's marks removed", func() (bool, string) {
		s := h.get(h.ns, "a")
		return s.Annotations[decide.AnnotationLoadBalancerIPs] == "" && s.Labels[decide.LabelImplementation] == "",
			fmt.Sprintf("%v %v", s.Annotations, s.Labels)
	})
}

// TestExistingProvidersFinalizerIsRemoved: Services handled by the existing
// provider carry the service controller's cleanup finalizer. Once this
// provider replaces it, deleting such a Service, or turning it into a
// ClusterIP, must not hang on that finalizer; other finalizers stay.
func TestExistingProvidersFinalizerIsRemoved(t *testing.T) {
	h := newHarness(t, map[string]string{"range-global": "192.0.2.60-192.0.2.61"})
	h.start(nil)
	finalized := func(s *corev1.Service) {
		s.Finalizers = []string{decide.FinalizerLoadBalancerCleanup}
	}
	h.create("deleted", finalized)
	h.addressOf(h.ns, "deleted")
	h.delete(h.ns, "deleted")
	h.eventually(10*time.Second, "the deleted Service gone", func() (bool, string) {
		s, err := client.CoreV1().Services(h.ns).Get(context.Background(), "deleted", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("still there with finalizers %v", s.Finalizers)
	})

	h.create("retyped", func(s *corev1.Service) {
		s.Finalizers = []string{"example.com/keep", decide.FinalizerLoadBalancerCleanup}
	})
	h.addressOf(h.ns, "retyped")
	s := h.get(h.ns, "retyped")
	s.Spec.Type = corev1.ServiceTypeClusterIP
	s.Spec.LoadBalancerIP = ""
	s.Spec.AllocateLoadBalancerNodePorts = nil
	if _, err := client.CoreV1().Services(h.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually(10*time.Second, "the cleanup finalizer removed, the other kept", func() (bool, string) {
		s := h.get(h.ns, "retyped")
		return len(s.Finalizers) == 1 && s.Finalizers[0] == "example.com/keep", fmt.Sprintf("finalizers %v", s.Finalizers)
	})
	s = h.get(h.ns, "retyped")
	s.Finalizers = nil
	if _, err := client.CoreV1().Services(h.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRestartMidBurstLosesNothing(t *testing.T) {
	const n = 300
	h := newHarness(t, map[string]string{"cidr-global": "10.30.0.0/22"})
	h.start(func(o *controller.Options) { o.Workers = 8 })
	var once sync.Once
	created := make(chan struct{}, n)
	go func() {
		// Restart once a third has been created.
		for i := 0; i < n/3; i++ {
			<-created
		}
		once.Do(func() {
			h.stopController()
			h.start(func(o *controller.Options) { o.Workers = 8 })
		})
	}()
	h.createBurst(n, func() { created <- struct{}{} })
	before := assertAllDistinct(t, h, n, nil)
	// Another restart: every address stays where it is.
	h.stopController()
	h.start(nil)
	time.Sleep(time.Second)
	after := assertAllDistinct(t, h, n, nil)
	for name, a := range before {
		if after[name] != a {
			t.Errorf("%s changed from %s to %s across a restart", name, a, after[name])
		}
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, nil)
	h.setConfig(map[string]string{"cidr-" + h.ns: "192.0.2.160/29"})
	h.start(nil)
	h.create("a")
	h.create("b")
	h.addressOf(h.ns, "a")
	h.addressOf(h.ns, "b")
	srv := httptest.NewServer(promhttp.HandlerFor(h.registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	var body string
	h.eventually(5*time.Second, "pool metrics", func() (bool, string) {
		resp, err := http.Get(srv.URL)
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		// The counter follows the write's answer, which may come a moment
		// after the Service shows its address: wait for both.
		for _, want := range []string{
			fmt.Sprintf(`kube_vip_cloud_provider_pool_addresses{family="IPv4",pool=%q,state="used"} 2`, h.ns),
			`kube_vip_cloud_provider_allocations_total 2`,
		} {
			if !strings.Contains(body, want) {
				return false, "no " + want
			}
		}
		return true, ""
	})
	for _, want := range []string{
		fmt.Sprintf(`kube_vip_cloud_provider_pool_addresses{family="IPv4",pool=%q,state="size"} 8`, h.ns),
		fmt.Sprintf(`kube_vip_cloud_provider_pool_addresses{family="IPv4",pool=%q,state="free"} 6`, h.ns),
		`kube_vip_cloud_provider_allocations_total 2`,
		`kube_vip_cloud_provider_queue_depth`,
		`kube_vip_cloud_provider_reconcile_duration_seconds_bucket`,
		`kube_vip_cloud_provider_allocation_failures_total{reason="PoolExhausted"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestContestedAnnotationIsGrantedOnceTheHolderGoes: a Service that
// carries, in its annotation, an address another Service holds with a
// colliding port is told so; once the holder is deleted it is granted the
// address at once (a back-off of a minute would miss the deadline).
func TestContestedAnnotationIsGrantedOnceTheHolderGoes(t *testing.T) {
	h := newHarness(t, map[string]string{"cidr-global": "192.0.2.216/29"})
	h.start(func(o *controller.Options) { o.RetryBaseDelay, o.RetryMaxDelay = time.Minute, time.Minute })
	h.create("first", withAnnotation(decide.AnnotationLoadBalancerIPs, "192.0.2.222"))
	h.waitEvent(h.ns, "Service", "first", decide.ReasonAddressAssigned, "192.0.2.222")
	h.create("later", withAnnotation(decide.AnnotationLoadBalancerIPs, "192.0.2.222"))
	h.waitEvent(h.ns, "Service", "later", decide.ReasonAllocationFailed, "held by "+h.ns+"/first")
	h.delete(h.ns, "first")
	h.waitEvent(h.ns, "Service", "later", decide.ReasonAddressAssigned, "192.0.2.222")
	if got := h.get(h.ns, "later").Labels[decide.LabelImplementation]; got != decide.ImplementationKubeVIP {
		t.Fatalf("later is labelled implementation=%q once granted", got)
	}
}

// TestClassModeTypeChangeRemovesOurMarks: the API server clears
// spec.loadBalancerClass when a Service stops being a LoadBalancer; with
// loadBalancerClass support on, the provider must still remove what it
// wrote, and spec.loadBalancerIP with it, before the address is reused.
func TestClassModeTypeChangeRemovesOurMarks(t *testing.T) {
	h := newHarness(t, map[string]string{"range-global": "192.0.2.230-192.0.2.230"})
	h.start(func(o *controller.Options) { o.Decide.EnableLoadBalancerClass = true })
	h.create("a", withClass(decide.DefaultLoadBalancerClass))
	addr := h.addressOf(h.ns, "a")
	s := h.get(h.ns, "a")
	s.Spec.Type = corev1.ServiceTypeClusterIP
	s.Spec.AllocateLoadBalancerNodePorts = nil
	s.Spec.LoadBalancerIP = ""
	if _, err := client.CoreV1().Services(h.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually(10*time.Second, "a's marks removed", func() (bool, string) {
		s := h.get(h.ns, "a")
		return s.Annotations[decide.AnnotationLoadBalancerIPs] == "" && s.Labels[decide.LabelImplementation] == "",
			fmt.Sprintf("class %v, annotations %v, labels %v", s.Spec.LoadBalancerClass, s.Annotations, s.Labels)
	})
	h.create("b", withClass(decide.DefaultLoadBalancerClass))
	if got := h.addressOf(h.ns, "b"); got != addr {
		t.Fatalf("b = %q, want the released %s", got, addr)
	}
}
