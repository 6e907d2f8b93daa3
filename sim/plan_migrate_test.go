package sim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// A cluster still run by another tool (MetalLB here): plan shows, before
// the switch, which Services keep their address (adopted from their status
// or their MetalLB request) and which would move, and why.
func TestPlanBeforeSwitchingFromAnotherTool(t *testing.T) {
	created := int64(0)
	lb := func(name string, ingress string, annotations map[string]string) *corev1.Service {
		created++ // the older holder keeps an address two are served on
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name, Annotations: annotations, CreationTimestamp: metav1.Unix(created, 0)},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
		if ingress != "" {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ingress}}
		}
		return s
	}
	svcs := []*corev1.Service{
		lb("served", "10.60.0.15", nil),
		lb("asked", "10.60.0.16", map[string]string{decide.AnnotationMetalLBIPs: "10.60.0.16"}),
		lb("outside", "192.0.2.7", nil),
		lb("moves", "10.60.0.17", map[string]string{decide.AnnotationMetalLBIPs: "10.60.0.18"}),
		lb("clash", "10.60.0.15", nil),
		lb("new", "", nil),
	}
	p, err := MakePlan(svcs, nil, nil, map[string]string{"range-global": "10.60.0.10-10.60.0.20"}, decide.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{ // outcome, after
		"apps/served":  {"keep, adopted", "10.60.0.15"},
		"apps/asked":   {"keep, adopted", "10.60.0.16"},
		"apps/outside": {"keep, adopted, outside pool", "192.0.2.7"},
		"apps/moves":   {"move", "10.60.0.18"},
		"apps/clash":   {"conflict", ""},
		"apps/new":     {"get", "10.60.0.10"},
	}
	for _, l := range p.Services {
		w, ok := want[l.Service]
		if !ok {
			t.Errorf("unexpected line %+v", l)
			continue
		}
		if l.Outcome != w[0] || l.After != w[1] {
			t.Errorf("%s: %s -> %q (%s), want %s -> %q", l.Service, l.Outcome, l.After, l.Detail, w[0], w[1])
		}
		delete(want, l.Service)
	}
	if len(want) > 0 {
		t.Errorf("no line for %v", want)
	}
}
