package controller_test

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
)

// lostAnswers lets every n-th update of a Service reach the API server and
// then drops the answer, as a time-out or a broken connection would: the
// write has landed, but the client is told it failed.
type lostAnswers struct {
	next    http.RoundTripper
	every   int64
	seen    atomic.Int64
	dropped atomic.Int64
}

func (l *lostAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil || r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/services/") {
		return resp, err
	}
	if l.seen.Add(1)%l.every != 0 {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	l.dropped.Add(1)
	return nil, errors.New("test: the answer to this update was lost")
}

// TestLostWriteAnswersNeverDoubleAllocate: when the answer to a write is
// lost, the write may have landed; the controller must keep the address
// reserved until the API server says, or it hands it to a second Service.
// The pool has exactly as many addresses as Services, so a double
// allocation would also leave one Service without an address.
func TestLostWriteAnswersNeverDoubleAllocate(t *testing.T) {
	const n = 60
	h := newHarness(t, map[string]string{"range-global": "10.31.0.1-10.31.0.60"})
	lost := &lostAnswers{every: 3}
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
	t.Logf("%d of %d answers to Service updates were lost", lost.dropped.Load(), lost.seen.Load())
}
