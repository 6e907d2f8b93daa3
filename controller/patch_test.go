package controller

import (
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServicePatchCarriesTheResourceVersionAndOnlyOurChanges(t *testing.T) {
	base := func() *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", ResourceVersion: "41",
				Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"team": "a"},
				Finalizers: []string{"example.com/keep", "service.kubernetes.io/load-balancer-cleanup"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
				Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 53, Protocol: corev1.ProtocolUDP}}},
		}
	}
	tests := []struct {
		name   string
		change func(*corev1.Service)
		// absent lists top-level keys of the patch's spec that must not be
		// there: fields the provider does not change are not sent.
		absentSpec []string
	}{
		{"assign", func(s *corev1.Service) {
			s.Annotations["kube-vip.io/loadbalancerIPs"] = "192.0.2.1,2001:db8::1"
			s.Labels["implementation"] = "kube-vip"
			s.Spec.LoadBalancerIP = "192.0.2.1"
		}, []string{"ports", "type"}},
		{"release and drop the existing provider's finalizer", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP // as the user already did
			delete(s.Annotations, "team")
			s.Finalizers = []string{"example.com/keep"}
		}, []string{"ports"}},
		{"nothing", func(*corev1.Service) {}, []string{"ports", "type"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from, to := base(), base()
			tc.change(to)
			p, err := servicePatch(from, to)
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				Metadata map[string]any `json:"metadata"`
				Spec     map[string]any `json:"spec"`
			}
			if err := json.Unmarshal(p, &m); err != nil {
				t.Fatal(err)
			}
			if m.Metadata["resourceVersion"] != "41" {
				t.Errorf("patch %s lacks resourceVersion 41", p)
			}
			for _, k := range tc.absentSpec {
				if _, ok := m.Spec[k]; ok {
					t.Errorf("patch %s sends spec.%s, which did not change", p, k)
				}
			}
			a, _ := json.Marshal(from)
			got, err := jsonpatch.MergePatch(a, p)
			if err != nil {
				t.Fatal(err)
			}
			var applied corev1.Service
			if err := json.Unmarshal(got, &applied); err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(&applied, to) {
				t.Fatalf("patch %s applied to the original gives\n%+v\nwant\n%+v", p, applied, *to)
			}
		})
	}
}
