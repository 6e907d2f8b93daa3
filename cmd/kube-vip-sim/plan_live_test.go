package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

// TestPlanReadsALiveCluster: plan reads the Services and the kubevip
// ConfigMap of a real API server, says what a new ConfigMap would change,
// and changes nothing.
func TestPlanReadsALiveCluster(t *testing.T) {
	cfg, kubeconfig := testenv.Start(t)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	if _, err := client.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubevip", Namespace: "kube-system"},
		Data:       map[string]string{"cidr-global": "192.0.2.0/29"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	no := false
	for name, addr := range map[string]string{"low": "192.0.2.1", "high": "192.0.2.6", "new": ""} {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
				Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
		}
		if addr != "" {
			s.Annotations = map[string]string{decide.AnnotationLoadBalancerIPs: addr}
			s.Labels = map[string]string{decide.LabelImplementation: decide.ImplementationKubeVIP}
		}
		if _, err := client.CoreV1().Services("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := client.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}

	newCM := write(t, "new.yaml", "cidr-global: 192.0.2.0/30\n")
	code, out, errOut := runCLI(t, "plan", "--config", newCM, "--kubeconfig", kubeconfig)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"default/low", "default/high", "keep, outside pool", "default/new", "global  IPv4"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`default/new +get +192\.0\.2\.2`).MatchString(out) {
		t.Errorf("plan does not give default/new the free 192.0.2.2:\n%s", out)
	}
	if n := strings.Count(out, "keep, outside pool"); n != 1 {
		t.Errorf("%d Services outside the new pool, want 1 (high at .6):\n%s", n, out)
	}

	after, err := client.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv := map[string]string{}
	for _, s := range before.Items {
		rv[s.Name] = s.ResourceVersion
	}
	for _, s := range after.Items {
		if old, ok := rv[s.Name]; ok && old != s.ResourceVersion {
			t.Errorf("plan changed Service %s (resourceVersion %s -> %s)", s.Name, rv[s.Name], s.ResourceVersion)
		}
	}
}

// TestPlanNeverPredictsAClaimedAddress: plan reads the live cluster's
// address claims (IPAddress objects), so it never predicts handing out an
// address someone else holds: a ClusterIP in the new pool (the API
// server's claim, managed by ipallocator.k8s.io) or an address another
// manager claimed. A Service that asks for the ClusterIP is a conflict
// that says the pool overlaps the service CIDR, as the controller reports.
func TestPlanNeverPredictsAClaimedAddress(t *testing.T) {
	const cip, taken, free = "10.96.250.5", "10.96.250.7", "10.96.250.6"
	cfg, kubeconfig := testenv.StartWith(t, map[string]string{"service-cluster-ip-range": "10.96.0.0/16"})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	testenv.ConfigMap(t, client, map[string]string{"cidr-elsewhere": "192.0.2.0/30"}) // no pool for default
	no := false
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "cluster"}, Spec: corev1.ServiceSpec{ClusterIP: cip, Ports: []corev1.ServicePort{{Port: 80}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "new1"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.1.1"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "new2"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.1.2"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "asks",
			Annotations: map[string]string{decide.AnnotationLoadBalancerIPs: cip},
			Labels:      map[string]string{decide.LabelImplementation: decide.ImplementationKubeVIP}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.1.3"}},
	} {
		s.Namespace = "default"
		s.Spec.AllocateLoadBalancerNodePorts = &no
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}
		} else {
			s.Spec.AllocateLoadBalancerNodePorts = nil
		}
		if _, err := client.CoreV1().Services("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ip, err := client.NetworkingV1().IPAddresses().Get(ctx, cip, metav1.GetOptions{})
	if err != nil || ip.Labels[networkingv1.LabelManagedBy] != engine.ClusterIPManager {
		t.Fatalf("IPAddress %s: %v, %v: want the API server's claim of the ClusterIP", cip, ip.Labels, err)
	}
	if _, err := client.NetworkingV1().IPAddresses().Create(ctx, &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: taken, Labels: map[string]string{networkingv1.LabelManagedBy: "other.example.com"}},
		Spec:       networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "elsewhere"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	newCM := write(t, "new.yaml", "range-global: 10.96.250.5-10.96.250.7\n")
	code, out, errOut := runCLI(t, "plan", "--config", newCM, "--kubeconfig", kubeconfig)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	if strings.Contains(errOut, "does not serve") {
		t.Errorf("plan says the API server serves no IPAddress: %s", errOut)
	}
	for _, claimed := range []string{cip, taken} {
		if regexp.MustCompile(`(get|wait) +` + regexp.QuoteMeta(claimed) + `\b`).MatchString(out) {
			t.Errorf("plan predicts the claimed %s for a Service:\n%s", claimed, out)
		}
	}
	for _, re := range []string{
		`default/new1 +get +` + regexp.QuoteMeta(free),
		`default/new2 +wait`,
		`default/asks +conflict .*the pool overlaps the service CIDR`,
		`global +IPv4 +3 +3 +0`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("plan output does not match %q:\n%s", re, out)
		}
	}
}
