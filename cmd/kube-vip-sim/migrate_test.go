package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

// TestMigrationStepsFromMetalLB replays docs/migration.md's steps on a
// real API server: Services as MetalLB left them (addresses in their
// status, some asked for in metallb.io/loadBalancerIPs); 1. plan the new
// ConfigMap against the cluster: every Service keeps its address; 2. create
// the ConfigMap and start the controller; 3. no address moved, and each
// Service says it was adopted.
func TestMigrationStepsFromMetalLB(t *testing.T) {
	cfg, kubeconfig := testenv.Start(t)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	no := false
	served := map[string]string{"web": "10.60.0.15", "dns": "10.60.0.12", "api": "10.60.0.19"}
	for name, ip := range served {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
				Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
		}
		if name == "api" {
			s.Annotations = map[string]string{decide.AnnotationMetalLBIPs: ip}
		}
		created, err := client.CoreV1().Services("default").Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if _, err := client.CoreV1().Services("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// 1. Plan the ConfigMap against the cluster, before the switch.
	data := "range-global: 10.60.0.10-10.60.0.20\n"
	newCM := write(t, "kubevip.yaml", data)
	code, out, errOut := runCLI(t, "plan", "--config", newCM, "--kubeconfig", kubeconfig)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	for name, ip := range served {
		if !regexp.MustCompile(`default/` + name + ` +keep, adopted +` + regexp.QuoteMeta(ip) + ` +` + regexp.QuoteMeta(ip)).MatchString(out) {
			t.Errorf("plan does not say default/%s keeps %s:\n%s", name, ip, out)
		}
	}
	if strings.Contains(out, "move") || strings.Contains(out, "conflict") {
		t.Errorf("plan says something moves:\n%s", out)
	}

	// 2. The ConfigMap, then the controller (MetalLB's controller stopped).
	testenv.ConfigMap(t, client, map[string]string{"range-global": "10.60.0.10-10.60.0.20"})
	runCtx, stop := context.WithCancel(klog.NewContext(ctx, logr.Discard()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = controller.New(client, controller.Options{AddressClaims: true}).Run(runCtx)
	}()
	t.Cleanup(func() { stop(); <-done })

	// 3. Nothing moved; each Service was adopted.
	deadline := time.Now().Add(20 * time.Second)
	for name, ip := range served {
		for {
			s, err := client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			if err == nil && s.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
				if got := s.Annotations[decide.AnnotationLoadBalancerIPs]; got != ip || s.Spec.LoadBalancerIP != ip {
					t.Errorf("%s: annotation %q, spec.loadBalancerIP %q: moved from %s", name, got, s.Spec.LoadBalancerIP, ip)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not adopted within 20 s", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	adopted := 0
	for _, e := range evs.Items {
		if e.Reason == decide.ReasonAddressAssigned && strings.Contains(e.Message, "adopted from status") {
			adopted++
		}
	}
	if adopted < 2 { // web and dns by their status; api by its MetalLB request
		t.Errorf("%d adoption Events, want web's and dns's", adopted)
	}
}
