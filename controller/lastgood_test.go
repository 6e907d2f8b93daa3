package controller_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// lastGood reads the controller's own ConfigMap of last good values:
// its data and resourceVersion ("" when there is none).
func (h *harness) lastGood() (map[string]string, string) {
	h.t.Helper()
	cm, err := client.CoreV1().ConfigMaps(h.cmNS).Get(context.Background(), h.cmName+controller.LastGoodSuffix, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, ""
	}
	if err != nil {
		h.t.Fatalf("read the last good values: %v", err)
	}
	return cm.Data, cm.ResourceVersion
}

// The last good value of a key survives a restart: saved in the API server
// when it changes (and only then), it serves a key that is malformed when
// the next controller starts, and the InvalidConfig Event names the key,
// its value and the value kept.
func TestTheLastGoodValueSurvivesARestart(t *testing.T) {
	good := map[string]string{"range-global": "10.65.0.1-10.65.0.3", "allow-share-global": "false"}
	h := newHarness(t, good)
	h.start(nil)
	h.eventually(15*time.Second, "the last good values saved", func() (bool, string) {
		data, _ := h.lastGood()
		return maps.Equal(data, good), fmt.Sprintf("saved %v", data)
	})
	_, rv := h.lastGood()
	h.create("a")
	if got := h.addressOf(h.ns, "a"); got != "10.65.0.1" {
		t.Fatalf("a got %q, want 10.65.0.1", got)
	}
	// A change that leaves every good value as it was writes nothing.
	h.setConfig(map[string]string{"range-global": "10.65.0.1-10.65.0.3", "allow-share-global": "false", "rnage-global": "x"})
	h.waitEvent(h.cmNS, "ConfigMap", h.cmName, decide.ReasonUnknownConfigKey, "rnage-global")
	if _, now := h.lastGood(); now != rv {
		t.Errorf("the last good values were written again (resourceVersion %s, was %s) though none changed", now, rv)
	}

	h.stopController()
	h.setConfig(map[string]string{"range-global": "10.65.0.300-10.65.0.3", "allow-share-global": "false"})
	h.start(nil)
	h.create("b")
	if got := h.addressOf(h.ns, "b"); got != "10.65.0.2" {
		t.Fatalf("b got %q, want 10.65.0.2 from the last good range-global", got)
	}
	h.waitEvent(h.cmNS, "ConfigMap", h.cmName, decide.ReasonInvalidConfig,
		`parse range-global="10.65.0.300-10.65.0.3": entry "10.65.0.300-10.65.0.3": "10.65.0.300" is not an IP address (keeping the last good value "10.65.0.1-10.65.0.3")`)
	if data, _ := h.lastGood(); !maps.Equal(data, good) {
		t.Errorf("saved %v after the restart, want the last good %v", data, good)
	}
}

// With no earlier good value, the NoPool failure names the malformed key
// and its value.
func TestNoPoolNamesTheMalformedKeyAndValue(t *testing.T) {
	h := newHarness(t, map[string]string{"cidr-global": "10.66.0.300/24"})
	h.start(nil)
	h.create("a")
	h.waitEvent(h.ns, "Service", "a", decide.ReasonAllocationFailed,
		`NoPool: key "cidr-global" value "10.66.0.300/24" is malformed: entry "10.66.0.300/24": not a CIDR (ADDRESS/BITS) or a range (FROM-TO); no earlier good value`)
}
