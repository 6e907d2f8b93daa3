package main

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// The binary, at its default verbosity (no -v), logs every refusal with
// its holder and the way out, and every annotation it will not act on as
// written (issue 17, items 3 and 4).
func TestTheBinaryLogsRefusalsAtTheDefaultVerbosity(t *testing.T) {
	client, log := configBinary(t, map[string]string{"range-global": "192.0.2.10-192.0.2.10"})
	loadBalancer(t, client, "default", "a")
	if got := addressOf(t, client, "default", "a").String(); got != "192.0.2.10" {
		t.Fatalf("a = %s, want 192.0.2.10", got)
	}
	loadBalancer(t, client, "default", "b")
	no := false
	if _, err := client.CoreV1().Services("default").Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default", Annotations: map[string]string{
			decide.AnnotationIgnore: "yes", decide.AnnotationMetalLBSharing: "dns"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
			LoadBalancerIP: "192.0.2.10", Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]string{
		{`"Warning" service="default/b" reason="AllocationFailed"`, "PoolExhausted", "range-global gives 1 IPv4 addresses"},
		{`"Warning" service="default/c" reason="AllocationFailed"`, "Conflict: address 192.0.2.10 is held by default/a", "free 192.0.2.10 from default/a"},
		{`"Warning" service="default/c" reason="UnsupportedAnnotation"`, `kube-vip.io/ignore=\"yes\" is not \"true\"`},
		{`"Warning" service="default/c" reason="UnsupportedAnnotation"`, `metallb.io/allow-shared-ip=\"dns\" is not supported`},
	} {
		eventually(t, 30*time.Second, "a log line with "+strings.Join(want, " "), func() (bool, string) {
			for _, line := range strings.Split(log.String(), "\n") {
				ok := true
				for _, w := range want {
					ok = ok && strings.Contains(line, w)
				}
				if ok {
					return true, ""
				}
			}
			return false, "not logged"
		})
	}
}
