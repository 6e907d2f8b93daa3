package controller_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// Annotations that were ignored without a word get a Warning (once per
// Service and value) that says what to use instead; other tools' request
// annotations are requests, and count as in use (issue 17, item 3).
func TestSilentAnnotationsAreWarned(t *testing.T) {
	h := newHarness(t, nil)
	h.setConfig(map[string]string{"range-" + h.ns: "10.172.0.10-10.172.0.20"})
	h.logs = &logLines{}
	h.start(nil)
	warned := func(name, substr string) corev1.Event {
		t.Helper()
		ev := h.waitEvent(h.ns, "Service", name, decide.ReasonUnsupportedAnnotation, substr)
		if ev.Type != corev1.EventTypeWarning {
			t.Errorf("%s: %s is %s, want Warning", name, ev.Reason, ev.Type)
		}
		h.waitLog(`"service"="`+h.ns+"/"+name+`"`, decide.ReasonUnsupportedAnnotation)
		return ev
	}

	// Only "true" ignores: the Service is handled, and told so.
	h.create("yes", withAnnotation(decide.AnnotationIgnore, "yes"))
	h.create("upper", withAnnotation(decide.AnnotationIgnore, "TRUE"))
	h.addressOf(h.ns, "yes")
	h.addressOf(h.ns, "upper")
	warned("yes", `kube-vip.io/ignore="yes" is not "true"`)
	warned("upper", `kube-vip.io/ignore="TRUE" is not "true"`)

	// A wrongly cased key of ours: did you mean.
	h.create("camel", withAnnotation("kube-vip.io/loadBalancerIPs", "10.172.0.15"))
	warned("camel", `did you mean "kube-vip.io/loadbalancerIPs"?`)

	// MetalLB's pool selection, MetalLB's and Cilium's sharing keys: what
	// to use instead.
	h.create("pool", withAnnotation("metallb.universe.tf/address-pool", "blue"))
	ev := warned("pool", "metallb.universe.tf/address-pool=\"blue\" is not supported")
	if !strings.Contains(ev.Message, "range-"+h.ns) {
		t.Errorf("%q does not name the keys to use", ev.Message)
	}
	h.create("share", withAnnotation("metallb.io/allow-shared-ip", "k"), withAnnotation("lbipam.cilium.io/sharing-key", "k"))
	warned("share", `metallb.io/allow-shared-ip="k" is not supported`)
	warned("share", `lbipam.cilium.io/sharing-key="k" is not supported`)

	// Cilium's older request annotation is a request.
	h.create("cilium", withAnnotation("io.cilium/lb-ipam-ips", "10.172.0.18"))
	if got := h.addressOf(h.ns, "cilium"); got != "10.172.0.18" {
		t.Errorf("io.cilium/lb-ipam-ips asked for 10.172.0.18, got %q", got)
	}

	// Another tool's Service (another class) with MetalLB's request: its
	// address is in use, and a request for it is a Conflict naming it.
	h.create("metallb", withClass("metallb.io/metallb"), withAnnotation("metallb.io/loadBalancerIPs", "10.172.0.19"))
	h.create("want19", withIP("10.172.0.19"))
	cev := h.waitEvent(h.ns, "Service", "want19", decide.ReasonAllocationFailed, "Conflict")
	if !strings.Contains(cev.Message, "held by "+h.ns+"/metallb") {
		t.Errorf("%q does not name the holder", cev.Message)
	}
	if got := h.get(h.ns, "want19").Annotations[decide.AnnotationLoadBalancerIPs]; got != "" {
		t.Errorf("want19 was given %q, which MetalLB's Service asks for", got)
	}

	// Once per Service and value: a new value is told, the old one is not
	// told again.
	s := h.get(h.ns, "pool")
	s.Annotations["metallb.universe.tf/address-pool"] = "green"
	if _, err := client.CoreV1().Services(h.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	warned("pool", `"green"`)
	for _, e := range events(h.ns, "Service", "pool") {
		if e.Reason == decide.ReasonUnsupportedAnnotation && e.Count != 1 {
			t.Errorf("%q recorded %d times, want once", e.Message, e.Count)
		}
	}
	// Nothing said about a Service with nothing unusual.
	for _, e := range events(h.ns, "Service", "cilium") {
		if e.Reason == decide.ReasonUnsupportedAnnotation {
			t.Errorf("cilium: %q", e.Message)
		}
	}
}
