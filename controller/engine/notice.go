package engine

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// notice records, once per Service and value, the annotations of svc (the
// Service named key) that ask for something this provider will not do as
// written (decide.Notices), and logs them. A restart may record one again.
func (e *Engine) notice(ctx context.Context, svc *corev1.Service, key string) {
	evs := decide.Notices(svc, e.opts.Decide)
	if len(evs) == 0 {
		return
	}
	e.mu.Lock()
	evs = e.seen.Once(key, evs)
	e.mu.Unlock()
	e.emit(ctx, svc, key, evs)
}
