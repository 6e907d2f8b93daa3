package controller_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// Every refusal is a Warning Event on the Service and a log line at the
// default verbosity, and both name the holder of what was refused and the
// way out (issue 17, item 4).
func TestRefusalsNameHolderAndWayOut(t *testing.T) {
	other := ""
	h := newHarness(t, nil)
	other = h.ns + "x"
	bare := h.ns + "n" // no pool, and no global pool
	h.setConfig(map[string]string{
		"range-" + h.ns:  "10.171.0.10-10.171.0.12",
		"range-" + other: "10.171.0.10-10.171.0.11", // overlaps h.ns's pool
	})
	for _, ns := range []string{other, bare} {
		if _, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteServices(ns) })
	}
	h.logs = &logLines{}
	h.start(nil)

	warning := func(ns, name, substr string, want ...string) {
		t.Helper()
		ev := h.waitEvent(ns, "Service", name, decide.ReasonAllocationFailed, substr)
		if ev.Type != corev1.EventTypeWarning {
			t.Errorf("%s/%s: %s is %s, want Warning", ns, name, ev.Reason, ev.Type)
		}
		for _, w := range want {
			if !strings.Contains(ev.Message, w) {
				t.Errorf("%s/%s: %s %q does not say %q", ns, name, ev.Reason, ev.Message, w)
			}
		}
	}

	// Conflict: the holder, and how to resolve it.
	h.create("a", withAnnotation(decide.AnnotationLoadBalancerIPs, "10.171.0.12"))
	if got := h.addressOf(h.ns, "a"); got != "10.171.0.12" {
		t.Fatalf("a = %q, want its request 10.171.0.12", got)
	}
	h.create("b", withIP("10.171.0.12"))
	holder := h.ns + "/a"
	warning(h.ns, "b", "Conflict",
		"address 10.171.0.12 is held by "+holder, "free 10.171.0.12 from "+holder, "spec.loadBalancerIP", "ports that do not collide")
	h.waitLog(`"service"="`+h.ns+`/b"`, decide.ReasonAllocationFailed, "held by "+holder, "free 10.171.0.12 from "+holder)

	// PoolExhausted: the pool's key and size, and the Services of the pool
	// that overlaps it that hold part of it.
	h.create("ox1", inNamespace(other))
	h.create("ox2", inNamespace(other))
	if a, b := h.addressOf(other, "ox1"), h.addressOf(other, "ox2"); a != "10.171.0.10" || b != "10.171.0.11" {
		t.Fatalf("ox1, ox2 = %s, %s; want 10.171.0.10, 10.171.0.11", a, b)
	}
	h.create("c")
	warning(h.ns, "c", "PoolExhausted",
		"range-"+h.ns+" gives 3 IPv4 addresses", other+"/ox1 (10.171.0.10, pool \""+other+"\")", other+"/ox2 (10.171.0.11", "widen range-"+h.ns)
	h.waitLog(`"service"="`+h.ns+`/c"`, "PoolExhausted", other+"/ox1", other+"/ox2")

	// InvalidRequest: what is wrong, where, and what to do.
	h.create("d", withAnnotation(decide.AnnotationLoadBalancerIPs, "bogus"))
	warning(h.ns, "d", "InvalidRequest", decide.AnnotationLoadBalancerIPs, "bogus", "fix or remove it")
	h.waitLog(`"service"="`+h.ns+`/d"`, "InvalidRequest", "bogus")

	// NoPool: which keys would give one.
	h.create("e", inNamespace(bare))
	warning(bare, "e", "NoPool", "add cidr-"+bare+" or range-"+bare)
	h.waitLog(`"service"="`+bare+`/e"`, "NoPool", "range-"+bare)

	// An address outside every pool is kept, and the Warning is logged too.
	h.create("f", withAnnotation(decide.AnnotationLoadBalancerIPs, "10.171.9.9"))
	h.waitEvent(h.ns, "Service", "f", decide.ReasonAddressOutsidePool, "10.171.9.9")
	h.waitLog(`"service"="`+h.ns+`/f"`, decide.ReasonAddressOutsidePool, "10.171.9.9")

	// Said once: a refusal retried with back-off records and logs nothing new.
	if n := len(h.logs.matching(`"msg"="Warning"`, `"service"="`+h.ns+`/b"`, "Conflict")); n != 1 {
		t.Errorf("the Conflict of b was logged %d times at the default verbosity, want once: %q", n, h.logs.matching(`"msg"="Warning"`, `"service"="`+h.ns+`/b"`, "Conflict"))
	}
}
