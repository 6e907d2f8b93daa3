package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

// The tests of this file pin, on the binary against a real API server, how
// the ConfigMap is reported (README, Events): UnknownConfigKey,
// ConfigNotice and InvalidConfig Events on kube-system/kubevip, and the
// NoPool Warning of a Service while the ConfigMap does not exist.

// configBinary starts a control plane with the kubevip ConfigMap holding
// data and namespaces nss, and runs the binary (active, no leader
// election) until the test ends. It returns a client and the binary's log.
func configBinary(t *testing.T, data map[string]string, nss ...string) (kubernetes.Interface, *lockedBuffer) {
	t.Helper()
	client, kubeconfig := startEnv(t)
	bin := buildBinary(t)
	for _, ns := range nss {
		if _, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	testenv.ConfigMap(t, client, data)
	return client, activeBinary(t, bin, kubeconfig, "binary")
}

// setConfig replaces the data of the kubevip ConfigMap and returns its new
// resourceVersion.
func setConfig(t *testing.T, client kubernetes.Interface, data map[string]string) string {
	t.Helper()
	ctx := context.Background()
	cm, err := client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubevip", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ConfigMap kube-system/kubevip: %v", err)
	}
	cm.Data = data
	cm, err = client.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update ConfigMap kube-system/kubevip: %v", err)
	}
	return cm.ResourceVersion
}

// loadBalancer creates the LoadBalancer Service ns/name.
func loadBalancer(t *testing.T, client kubernetes.Interface, ns, name string) {
	t.Helper()
	no := false
	if _, err := client.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
			Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Service %s/%s: %v", ns, name, err)
	}
}

// addressOf waits until the Service ns/name carries an address and
// returns it.
func addressOf(t *testing.T, client kubernetes.Interface, ns, name string) netip.Addr {
	t.Helper()
	var addr netip.Addr
	eventually(t, 30*time.Second, "an address for Service "+ns+"/"+name, func() (bool, string) {
		s, err := client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		v := s.Annotations[decide.AnnotationLoadBalancerIPs]
		if v == "" {
			return false, "no " + decide.AnnotationLoadBalancerIPs + " annotation yet"
		}
		addr, err = netip.ParseAddr(v)
		return err == nil, fmt.Sprintf("annotation %q: %v", v, err)
	})
	return addr
}

// eventsAbout lists the Events about the object ns/name of kind.
func eventsAbout(t *testing.T, client kubernetes.Interface, kind, ns, name string) []corev1.Event {
	t.Helper()
	list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name})
	if err != nil {
		t.Fatalf("list Events about %s %s/%s: %v", kind, ns, name, err)
	}
	return list.Items
}

// times counts how often Events of type and reason whose message contains
// all of parts were recorded: the recorder folds a repeated Event into one
// object with a higher count, so the counts are summed.
func times(events []corev1.Event, typ, reason string, parts ...string) int {
	n := 0
next:
	for _, e := range events {
		if e.Type != typ || e.Reason != reason {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(e.Message, p) {
				continue next
			}
		}
		n += max(int(e.Count), 1)
	}
	return n
}

// describe lists events as type/reason: message, one a line, for failures.
func describe(events []corev1.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "\n  %s/%s (x%d): %s", e.Type, e.Reason, e.Count, e.Message)
	}
	if b.Len() == 0 {
		return "no Events"
	}
	return b.String()
}

// waitConfigEvent waits until the kubevip ConfigMap has an Event of type
// and reason whose message contains all of parts.
func waitConfigEvent(t *testing.T, client kubernetes.Interface, typ, reason string, parts ...string) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("a %s Event %s on ConfigMap kube-system/kubevip with %q", typ, reason, parts), func() (bool, string) {
		ev := eventsAbout(t, client, "ConfigMap", "kube-system", "kubevip")
		return times(ev, typ, reason, parts...) > 0, describe(ev)
	})
}

// unknownKeyMessage is the distinctive part of an UnknownConfigKey message.
func unknownKeyMessage(key string) string {
	return fmt.Sprintf("key %q is not one kube-vip-cloud-provider understands: it is ignored", key)
}

// TestUnknownConfigKeysAreReportedOnce pins UnknownConfigKey on the
// binary: each misspelt key of the ConfigMap gets one Normal Event on
// kube-system/kubevip naming it (and the key it probably means) and one log
// line naming it; a later version that keeps the key reports it no more;
// the valid keys serve all the same.
func TestUnknownConfigKeysAreReportedOnce(t *testing.T) {
	data := map[string]string{
		"cidr-global":   "192.0.2.0/28",
		"cidrglobal":    "198.51.100.0/28",
		"allow_share-x": "true",
		"serach-order":  "desc",
	}
	client, log := configBinary(t, data)
	unknown := map[string]string{"cidrglobal": "cidr-global", "allow_share-x": "allow-share-x", "serach-order": "search-order"}
	for key, meant := range unknown {
		waitConfigEvent(t, client, corev1.EventTypeNormal, decide.ReasonUnknownConfigKey,
			unknownKeyMessage(key), fmt.Sprintf("(did you mean %q?)", meant))
	}
	loadBalancer(t, client, "default", "web")
	if a := addressOf(t, client, "default", "web"); !netip.MustParsePrefix("192.0.2.0/28").Contains(a) {
		t.Errorf("Service default/web got %s, want one of cidr-global 192.0.2.0/28 (the unknown cidrglobal must not serve)", a)
	}

	// A new version that keeps the three keys and adds a fourth, which
	// sorts after them: its Event, recorded after any repeat of theirs,
	// shows the version was processed.
	data["skip-end-ip-in-cidr"] = "true"
	rv := setConfig(t, client, data)
	waitConfigEvent(t, client, corev1.EventTypeNormal, decide.ReasonUnknownConfigKey, unknownKeyMessage("skip-end-ip-in-cidr"))
	eventually(t, 30*time.Second, "the log line of the new version "+rv, func() (bool, string) {
		return strings.Contains(log.String(), `resourceVersion="`+rv+`"`), "not logged yet"
	})

	ev := eventsAbout(t, client, "ConfigMap", "kube-system", "kubevip")
	for key := range unknown {
		if n := times(ev, corev1.EventTypeNormal, decide.ReasonUnknownConfigKey, unknownKeyMessage(key)); n != 1 {
			t.Errorf("unknown key %s reported by %d Events over two versions that both have it, want 1:%s", key, n, describe(ev))
		}
		if n := strings.Count(log.String(), `"Unknown ConfigMap key, ignored: `+key+`"`); n != 1 {
			t.Errorf("unknown key %s logged %d times over two versions that both have it, want 1", key, n)
		}
	}
	if n := times(ev, corev1.EventTypeNormal, decide.ReasonUnknownConfigKey); n != len(unknown)+1 {
		t.Errorf("%d UnknownConfigKey Events, want %d (one per unknown key):%s", n, len(unknown)+1, describe(ev))
	}
}

// TestHostBitsAreAConfigNotice pins ConfigNotice on the binary: a CIDR
// with host bits set gets a Normal Event on kube-system/kubevip naming the
// key, the entry and the range it is read as, and a log line naming the
// key; the CIDR serves as that network; an update that keeps it does not
// report it again.
func TestHostBitsAreAConfigNotice(t *testing.T) {
	data := map[string]string{"cidr-global": "192.0.2.5/29"}
	client, log := configBinary(t, data)
	notice := `cidr-global: entry "192.0.2.5/29" has host bits set: it is read as 192.0.2.0/29, that is 192.0.2.0-192.0.2.7`
	waitConfigEvent(t, client, corev1.EventTypeNormal, decide.ReasonConfigNotice, notice)
	eventually(t, 10*time.Second, "the log line of the notice", func() (bool, string) {
		return strings.Contains(log.String(), `"ConfigMap CIDR with host bits set, read as its network: cidr-global"`), "not logged"
	})
	loadBalancer(t, client, "default", "web")
	if a := addressOf(t, client, "default", "web"); !netip.MustParsePrefix("192.0.2.0/29").Contains(a) {
		t.Errorf("Service default/web got %s, want one of 192.0.2.0/29, the network cidr-global is read as", a)
	}

	// A new version keeping the entry, with an unknown key as the sign
	// that it was processed.
	data["zone"] = "a"
	setConfig(t, client, data)
	waitConfigEvent(t, client, corev1.EventTypeNormal, decide.ReasonUnknownConfigKey, unknownKeyMessage("zone"))
	ev := eventsAbout(t, client, "ConfigMap", "kube-system", "kubevip")
	if n := times(ev, corev1.EventTypeNormal, decide.ReasonConfigNotice, notice); n != 1 {
		t.Errorf("the host bits of cidr-global reported by %d Events over two versions that both have them, want 1:%s", n, describe(ev))
	}
}

// TestUnspecifiedRangeIsInvalidConfig pins that range-<ns>:
// 0.0.0.0-0.0.0.0 is a malformed key on the binary, not an empty pool:
// a Warning InvalidConfig on kube-system/kubevip naming the key and the
// entry; a key that had a good value keeps serving it, and a namespace
// whose only pool key never had one waits with NoPool naming that (as the
// README says: not the global pool), never PoolExhausted.
func TestUnspecifiedRangeIsInvalidConfig(t *testing.T) {
	data := map[string]string{
		"cidr-global": "192.0.2.0/28",
		"range-team":  "198.51.100.10-198.51.100.11",
		"range-other": "0.0.0.0-0.0.0.0",
	}
	client, log := configBinary(t, data, "team", "other")
	waitConfigEvent(t, client, corev1.EventTypeWarning, decide.ReasonInvalidConfig,
		`range-other="0.0.0.0-0.0.0.0"`, "not DHCP", "(key ignored)")
	loadBalancer(t, client, "other", "svc")
	eventually(t, 30*time.Second, "a NoPool Warning on Service other/svc naming its malformed pool", func() (bool, string) {
		ev := eventsAbout(t, client, "Service", "other", "svc")
		return times(ev, corev1.EventTypeWarning, decide.ReasonAllocationFailed, `NoPool: key "range-other" value "0.0.0.0-0.0.0.0" is malformed`, "no earlier good value") > 0, describe(ev)
	})
	loadBalancer(t, client, "team", "a")
	if a := addressOf(t, client, "team", "a"); a != netip.MustParseAddr("198.51.100.10") {
		t.Errorf("Service team/a got %s, want 198.51.100.10 from range-team", a)
	}

	// Broken later: the last good value keeps serving.
	data["range-team"] = "0.0.0.0-0.0.0.0"
	setConfig(t, client, data)
	waitConfigEvent(t, client, corev1.EventTypeWarning, decide.ReasonInvalidConfig,
		`range-team="0.0.0.0-0.0.0.0"`, "not DHCP", `(keeping the last good value "198.51.100.10-198.51.100.11")`)
	if !strings.Contains(log.String(), `key="range-team" value="0.0.0.0-0.0.0.0"`) {
		t.Error(`no log line names key="range-team" value="0.0.0.0-0.0.0.0"`)
	}
	loadBalancer(t, client, "team", "b")
	if a := addressOf(t, client, "team", "b"); a != netip.MustParseAddr("198.51.100.11") {
		t.Errorf("Service team/b got %s, want 198.51.100.11 from the last good range-team", a)
	}
	for _, svc := range []string{"team/a", "team/b"} {
		ns, name, _ := strings.Cut(svc, "/")
		if ev := eventsAbout(t, client, "Service", ns, name); times(ev, corev1.EventTypeWarning, decide.ReasonAllocationFailed) > 0 {
			t.Errorf("Service %s: an AllocationFailed Warning, want none (range-team keeps its last good value):%s", svc, describe(ev))
		}
	}
	if ev := eventsAbout(t, client, "Service", "other", "svc"); times(ev, corev1.EventTypeWarning, decide.ReasonAllocationFailed, "PoolExhausted") > 0 {
		t.Errorf("Service other/svc: PoolExhausted, as if 0.0.0.0-0.0.0.0 were an empty pool:%s", describe(ev))
	}
	if s, err := client.CoreV1().Services("other").Get(context.Background(), "svc", metav1.GetOptions{}); err != nil || s.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
		t.Errorf("Service other/svc: want it waiting without an address, got %v %v", err, s.Annotations)
	}
}

// TestDeletedConfigMapIsReported pins what the binary does when the
// ConfigMap is deleted: it logs it, keeps the addresses assigned, and a
// Service created then waits with a Warning AllocationFailed whose message
// (NoPool) names the missing ConfigMap; created again, the ConfigMap
// serves that Service.
func TestDeletedConfigMapIsReported(t *testing.T) {
	data := map[string]string{"cidr-global": "192.0.2.0/28"}
	client, log := configBinary(t, data)
	ctx := context.Background()
	loadBalancer(t, client, "default", "before")
	held := addressOf(t, client, "default", "before")

	if err := client.CoreV1().ConfigMaps("kube-system").Delete(ctx, "kubevip", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete ConfigMap kube-system/kubevip: %v", err)
	}
	eventually(t, 30*time.Second, "the deletion logged", func() (bool, string) {
		l := log.String()
		return strings.Contains(l, `"ConfigMap deleted: no pools until it is created again`) && strings.Contains(l, `configMap="kube-system/kubevip"`), "not logged"
	})

	loadBalancer(t, client, "default", "after")
	eventually(t, 30*time.Second, "a Warning on Service default/after naming the missing ConfigMap", func() (bool, string) {
		ev := eventsAbout(t, client, "Service", "default", "after")
		return times(ev, corev1.EventTypeWarning, decide.ReasonAllocationFailed, "NoPool: ConfigMap kube-system/kubevip not found") > 0, describe(ev)
	})
	s, err := client.CoreV1().Services("default").Get(ctx, "after", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Annotations[decide.AnnotationLoadBalancerIPs]; v != "" {
		t.Fatalf("Service default/after got %s while there is no ConfigMap", v)
	}

	testenv.ConfigMap(t, client, data)
	if a := addressOf(t, client, "default", "after"); !netip.MustParsePrefix("192.0.2.0/28").Contains(a) || a == held {
		t.Errorf("Service default/after got %s once the ConfigMap is back, want a free one of 192.0.2.0/28 (%s is held)", a, held)
	}
	if a := addressOf(t, client, "default", "before"); a != held {
		t.Errorf("Service default/before holds %s, want %s, the address it had before the ConfigMap was deleted", a, held)
	}
}
