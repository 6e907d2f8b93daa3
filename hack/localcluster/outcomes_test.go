package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
)

func TestOutcomeLines(t *testing.T) {
	svc := corev1.ObjectReference{Kind: "Service", Namespace: "default", Name: "web", UID: "u1"}
	cm := corev1.ObjectReference{Kind: "ConfigMap", Namespace: "kube-system", Name: "kubevip"}
	ours := corev1.EventSource{Component: controller.Component}
	for _, tc := range []struct {
		name      string
		ev        corev1.Event
		addresses string
		want      string // "" means not printed
	}{
		{"assigned", corev1.Event{InvolvedObject: svc, Source: ours, Type: "Normal", Reason: "AddressAssigned", Message: "assigned 192.168.0.200 from pool \"global\""},
			"192.168.0.200", "ASSIGNED default/web 192.168.0.200"},
		{"a refused request is refused, whatever the annotation holds", corev1.Event{InvolvedObject: svc, Source: ours, Type: "Warning", Reason: "AllocationFailed", Message: "InvalidRequest: \"bogus\" is not an IP address"},
			"bogus", "REFUSED default/web: AllocationFailed: InvalidRequest: \"bogus\" is not an IP address"},
		{"a conflict", corev1.Event{InvolvedObject: svc, Source: ours, Type: "Warning", Reason: "AllocationFailed", Message: "Conflict: address 192.168.0.200 is held by default/hello"},
			"192.168.0.200", "REFUSED default/web: AllocationFailed: Conflict: address 192.168.0.200 is held by default/hello"},
		{"another warning", corev1.Event{InvolvedObject: svc, Source: ours, Type: "Warning", Reason: "AddressOutsidePool", Message: "outside"},
			"10.0.0.1", "WARNING default/web: AddressOutsidePool: outside"},
		{"assigned, but the Service no longer carries it", corev1.Event{InvolvedObject: svc, Source: ours, Type: "Normal", Reason: "AddressAssigned", Message: "assigned 192.168.0.200"},
			"", "NOTE default/web: AddressAssigned: assigned 192.168.0.200"},
		{"released", corev1.Event{InvolvedObject: svc, Source: ours, Type: "Normal", Reason: "AddressReleased", Message: "released 192.168.0.200"},
			"", "NOTE default/web: AddressReleased: released 192.168.0.200"},
		{"the ConfigMap", corev1.Event{InvolvedObject: cm, Source: ours, Type: "Warning", Reason: "InvalidConfig", Message: "cidr-global: bad"},
			"", "WARNING ConfigMap kube-system/kubevip: InvalidConfig: cidr-global: bad"},
		{"not the controller's", corev1.Event{InvolvedObject: svc, Source: corev1.EventSource{Component: "service-controller"}, Type: "Normal", Reason: "EnsuringLoadBalancer"},
			"192.168.0.200", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := outcome(&tc.ev, tc.addresses)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("outcome = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}
