package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
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
