package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Intervals of the API server probe: after a failure the next check waits
// probeMinBackoff, doubling up to probeMaxBackoff; while the API server
// answers, it is checked every probeHealthyEvery. Each check may take
// probeTimeout.
const (
	probeMinBackoff   = time.Second
	probeMaxBackoff   = 30 * time.Second
	probeHealthyEvery = 5 * time.Second
	probeTimeout      = 5 * time.Second
)

// errNotContacted is the probe's state before its first answer.
var errNotContacted = errors.New("not contacted yet")

// apiServerProbe checks that the API server answers. client-go retries a
// failed connection quietly (at verbosity 2 and more) and for ever; the
// probe says so at the default verbosity, one line per failed check with a
// growing interval, and gives /readyz the reason.
type apiServerProbe struct {
	host  string
	check func(ctx context.Context) error

	mu        sync.Mutex
	err       error // of the last check; errNotContacted before the first
	contacted chan struct{}
}

// newAPIServerProbe probes the API server of client, whose address is host,
// by reading /version (which every client, even an unauthenticated one, may
// read).
func newAPIServerProbe(client kubernetes.Interface, host string) *apiServerProbe {
	return &apiServerProbe{
		host: host,
		check: func(ctx context.Context) error {
			return client.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error()
		},
		err:       errNotContacted,
		contacted: make(chan struct{}),
	}
}

// run checks the API server until ctx is done.
func (p *apiServerProbe) run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	backoff := probeMinBackoff
	failures := 0
	var firstFailure time.Time
	for {
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := p.check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		next := probeHealthyEvery
		if err != nil {
			if failures == 0 {
				firstFailure = time.Now()
			}
			failures++
			next = backoff
			backoff = min(2*backoff, probeMaxBackoff)
			logger.Error(err, "Cannot reach the API server", "server", p.host, "failures", failures,
				"since", firstFailure.Format(time.RFC3339), "nextTryIn", next)
		} else {
			if failures > 0 {
				logger.Info("The API server answers again", "server", p.host, "failures", failures, "after", time.Since(firstFailure).Round(time.Millisecond))
			}
			failures, backoff = 0, probeMinBackoff
		}
		p.mu.Lock()
		if err == nil && p.err != nil {
			select {
			case <-p.contacted:
			default:
				close(p.contacted)
			}
		}
		p.err = err
		p.mu.Unlock()

		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// failure is why the API server is not usable: nil once it answered its
// last check.
func (p *apiServerProbe) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		return nil
	}
	return fmt.Errorf("API server %s: %w", p.host, p.err)
}

// waitContacted returns once the API server has answered a check, or with
// ctx's error once ctx is done.
func (p *apiServerProbe) waitContacted(ctx context.Context) error {
	select {
	case <-p.contacted:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
