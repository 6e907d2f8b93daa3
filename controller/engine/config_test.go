package engine

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// logged returns a context whose logger appends each line to lines.
func logged(lines *[]string) context.Context {
	return klog.NewContext(context.Background(), funcr.New(func(prefix, args string) {
		*lines = append(*lines, args)
	}, funcr.Options{}))
}

// configMap returns version rv of the kubevip ConfigMap.
func configMap(rv string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubevip", ResourceVersion: rv}, Data: data}
}

// eventsOf returns the recorded Events of the given reason.
func (h *harness) eventsOf(reason string) []string {
	var out []string
	for _, e := range h.rec.events {
		if strings.Contains(e, " "+reason+": ") {
			out = append(out, e)
		}
	}
	return out
}

// Keys the controller does not understand are reported once each, with a
// Normal Event on the ConfigMap and a log line naming the key; the keys it
// does understand never are.
func TestUnknownKeysAreReportedOnceEach(t *testing.T) {
	h := newHarness(t, nil, mutant.Flaws{})
	var lines []string
	ctx := logged(&lines)
	known := map[string]string{"cidr-global": "10.0.0.0/30", "range-a": "10.1.0.1-10.1.0.2", "allow-share-a": "true",
		"interface-a": "eth1", "search-order": "desc", "skip-end-ips-in-cidr": "true"}
	with := func(extra map[string]string) map[string]string {
		d := map[string]string{}
		for k, v := range known {
			d[k] = v
		}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	h.e.SetConfig(ctx, configMap("2", with(map[string]string{"serach-order": "desc", "cidrglobal": "10.0.0.0/24"})))
	h.e.SetConfig(ctx, configMap("3", with(map[string]string{"serach-order": "asc", "cidrglobal": "10.0.0.0/24", "cidr-global": "10.0.0.0/29"})))
	h.e.SetConfig(ctx, configMap("4", with(map[string]string{"serach-order": "asc", "cidrglobal": "10.0.0.0/24", "allow_share-x": "true"})))
	want := []string{
		`kube-system/kubevip UnknownConfigKey: key "cidrglobal" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "cidr-global"?)`,
		`kube-system/kubevip UnknownConfigKey: key "serach-order" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "search-order"?)`,
		`kube-system/kubevip UnknownConfigKey: key "allow_share-x" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "allow-share-x"?)`,
	}
	if got := h.eventsOf(decide.ReasonUnknownConfigKey); !slices.Equal(got, want) {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, key := range []string{"cidrglobal", "serach-order", "allow_share-x"} {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, `"msg"="Unknown ConfigMap key, ignored: `+key+`"`) && strings.Contains(l, `"key"="`+key+`"`) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d log lines name %s, want 1:\n%s", n, key, strings.Join(lines, "\n"))
		}
	}
}

// A CIDR with host bits keeps being masked (users rely on it), and is
// reported once: a Normal ConfigNotice naming the key, the entry and the
// range it really means, and a log line.
func TestHostBitsAreMaskedAndReportedOnce(t *testing.T) {
	var lines []string
	ctx := logged(&lines)
	h := newHarness(t, map[string]string{"cidr-global": "10.0.0.0/30"}, mutant.Flaws{})
	data := map[string]string{"cidr-global": "192.168.0.220/29"}
	h.e.SetConfig(ctx, configMap("2", data))
	h.e.SetConfig(ctx, configMap("3", map[string]string{"cidr-global": "192.168.0.220/29", "allow-share-global": "true"}))
	want := []string{`kube-system/kubevip ConfigNotice: cidr-global: entry "192.168.0.220/29" has host bits set: it is read as 192.168.0.216/29, that is 192.168.0.216-192.168.0.223`}
	if got := h.eventsOf(decide.ReasonConfigNotice); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.Contains(l, `"key"="cidr-global"`) && strings.Contains(l, `"entry"="192.168.0.220/29"`) && strings.Contains(l, "192.168.0.216-192.168.0.223")
	}) {
		t.Errorf("no log line names the key, the entry and the range:\n%s", strings.Join(lines, "\n"))
	}
	h.f.put(lb("a", nil))
	h.sync(t, "ns/a")
	if got := h.addr("ns/a"); got != "192.168.0.216" {
		t.Errorf("a got %q, want 192.168.0.216: the entry is still masked", got)
	}
}

// The ConfigMap deleted: logged, and a Service that then waits is told
// the ConfigMap is missing, by name. Addresses already assigned stay.
func TestADeletedConfigMapIsLoggedAndNamedInNoPool(t *testing.T) {
	var lines []string
	ctx := logged(&lines)
	h := newHarness(t, map[string]string{"cidr-global": "10.0.0.0/30"}, mutant.Flaws{})
	h.f.put(lb("a", nil))
	h.sync(t, "ns/a")
	if !h.e.SetConfig(ctx, nil) {
		t.Fatal("the deletion was not taken as a change")
	}
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.Contains(l, "ConfigMap deleted") && strings.Contains(l, `"configMap"="kube-system/kubevip"`)
	}) {
		t.Errorf("the deletion is not logged with the ConfigMap's name:\n%s", strings.Join(lines, "\n"))
	}
	h.f.put(lb("b", nil))
	h.sync(t, "ns/b")
	h.sync(t, "ns/a")
	want := []string{"ns/b AllocationFailed: NoPool: ConfigMap kube-system/kubevip not found; create it: the Service gets an address as soon as it has a pool"}
	if got := h.eventsOf(decide.ReasonAllocationFailed); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if h.addr("ns/a") != "10.0.0.1" {
		t.Errorf("a lost its address: %q", h.addr("ns/a"))
	}
	want = []string{"ns/a AddressOutsidePool: address 10.0.0.1 is outside every pool (ConfigMap kube-system/kubevip not found); it is kept"}
	if got := h.eventsOf(decide.ReasonAddressOutsidePool); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}

	// A controller that starts without it names the one it was given.
	rec := &fakeRecorder{}
	f := newFake()
	e := New(f, rec, nil, func(string) {}, Options{ConfigMap: "lb/pools"})
	e.Start(context.Background(), nil, nil)
	f.put(lb("c", nil))
	if _, err := e.SyncService(context.Background(), "ns/c"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ns/c AllocationFailed: NoPool: ConfigMap lb/pools not found; create it: the Service gets an address as soon as it has a pool"}; !slices.Equal(rec.events, want) {
		t.Errorf("events %q, want %q", rec.events, want)
	}
}
