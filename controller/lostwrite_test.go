package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// lostAnswers fails every n-th update of a Service as a time-out or a
// broken connection would: with land set, the write reaches the API server
// and only its answer is lost; without, the write is lost on its way.
// Either way the client is told it failed, and cannot tell which.
type lostAnswers struct {
	next    http.RoundTripper
	every   int64
	land    bool
	seen    atomic.Int64
	dropped atomic.Int64
}

func (l *lostAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	if (r.Method != http.MethodPut && r.Method != http.MethodPatch) || !strings.Contains(r.URL.Path, "/services/") ||
		l.seen.Add(1)%l.every != 0 {
		return l.next.RoundTrip(r)
	}
	l.dropped.Add(1)
	if !l.land {
		return nil, errors.New("test: this update was lost on its way")
	}
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, errors.New("test: the answer to this update was lost")
}

// TestLostWriteAnswersNeverDoubleAllocate: when the answer to a write is
// lost, the write may have landed; the controller must keep the address
// reserved until the API server says, or it hands it to a second Service.
// The pool has exactly as many addresses as Services, so a double
// allocation would also leave one Service without an address.
func TestLostWriteAnswersNeverDoubleAllocate(t *testing.T) {
	for _, land := range []bool{true, false} {
		t.Run(map[bool]string{true: "the writes land", false: "the writes are lost"}[land], func(t *testing.T) {
			lostWrites(t, land)
		})
	}
}

func lostWrites(t *testing.T, land bool) {
	const n = 60
	h := newHarness(t, map[string]string{"range-global": "10.31.0.1-10.31.0.60"})
	lost := &lostAnswers{every: 3, land: land}
	cfg := rest.CopyConfig(restConfig)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { lost.next = rt; return lost })
	h.client = kubernetes.NewForConfigOrDie(cfg)
	h.start(func(o *controller.Options) { o.Workers = 8 })
	h.createBurst(n, nil)
	pool := netip.MustParsePrefix("10.31.0.0/26")
	assertAllDistinct(t, h, n, pool.Contains)
	if lost.dropped.Load() == 0 {
		t.Fatal("no answer was dropped: the test proved nothing")
	}
	// Every Service hears of its address, also those whose answer was lost.
	h.eventually(15*time.Second, "an AddressAssigned Event for every Service", func() (bool, string) {
		list, err := client.CoreV1().Events(h.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=" + decide.ReasonAddressAssigned})
		if err != nil {
			return false, err.Error()
		}
		told := map[string]bool{}
		for _, e := range list.Items {
			told[e.InvolvedObject.Name] = true
		}
		return len(told) == n, fmt.Sprintf("%d of %d Services", len(told), n)
	})
	t.Logf("%d of %d Service updates failed without an answer", lost.dropped.Load(), lost.seen.Load())
}

// TestAPatchCarryingAResourceVersionIsAPrecondition pins down what the
// controller's writes rely on: a JSON merge patch that carries
// metadata.resourceVersion is refused with 409 Conflict once the Service
// has moved on, as an Update would be.
func TestAPatchCarryingAResourceVersionIsAPrecondition(t *testing.T) {
	h := newHarness(t, nil)
	old := h.create("web")
	cur := old.DeepCopy()
	cur.Annotations = map[string]string{"team": "a"}
	if _, err := client.CoreV1().Services(h.ns).Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"metadata":{"resourceVersion":"` + old.ResourceVersion + `","labels":{"implementation":"kube-vip"}}}`)
	_, err := client.CoreV1().Services(h.ns).Patch(context.Background(), "web", types.MergePatchType, patch, metav1.PatchOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("patch at a stale resourceVersion: %v, want a 409 Conflict", err)
	}
	if got := h.get(h.ns, "web").Labels["implementation"]; got != "" {
		t.Fatalf("the stale patch was applied: label implementation=%q", got)
	}
}
