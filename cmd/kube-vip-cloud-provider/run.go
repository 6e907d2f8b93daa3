package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
)

// run runs the controller until ctx is done or leadership is lost: clients,
// then the HTTP endpoints, then the controller (leader-elected unless
// --leader-elect=false).
func run(ctx context.Context, o options) error {
	cs, err := newClients(o, os.Getenv)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := &runner{opts: o, clients: cs, metrics: controller.NewMetrics(reg), probe: newAPIServerProbe(cs.main, cs.host)}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, err := startServers(ctx, o, reg, cs.main, r.ready)
	defer srv.wait()
	defer cancel()
	if err != nil {
		return err
	}
	go r.probe.run(ctx)
	// Nothing starts before the API server answered: until then the probe
	// logs why not, /readyz says it, and SIGTERM ends the wait at once.
	if err := r.probe.waitContacted(ctx); err != nil {
		klog.FromContext(ctx).Info("Stopped before the API server answered", "server", cs.host)
		return nil
	}
	if !o.leaderElect {
		return r.runAlone(ctx)
	}
	return r.runLeaderElected(ctx)
}

// runner runs the controller, and answers /readyz about it.
type runner struct {
	opts    options
	clients clients
	metrics *controller.Metrics
	probe   *apiServerProbe

	leading atomic.Bool
	mu      sync.Mutex
	current *controller.Controller
}

// ready is /readyz: nil when ready, else why not. Nobody is ready while
// the API server does not answer; then a standby replica is ready to take
// over, and a leader once its controller's caches are synced.
func (r *runner) ready() error {
	if err := r.probe.failure(); err != nil {
		return err
	}
	if !r.leading.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current == nil || !r.current.Ready() {
		return errors.New("caches not synced")
	}
	return nil
}

// runController runs one controller until ctx is done; closing abort cuts
// the syncs in flight off at once.
func (r *runner) runController(ctx context.Context, abort <-chan struct{}) error {
	co := r.opts.controllerOptions()
	co.Metrics = r.metrics
	co.EventClient = r.clients.events
	co.Abort = abort
	c := controller.New(r.clients.main, co)
	r.mu.Lock()
	r.current = c
	r.mu.Unlock()
	return c.Run(ctx)
}

// runAlone runs the controller without leader election; on ctx's end it
// finishes the writes in flight.
func (r *runner) runAlone(ctx context.Context) error {
	r.leading.Store(true)
	runCtx, cancelRun := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelRun(nil)
	defer context.AfterFunc(ctx, func() { cancelRun(controller.ErrShuttingDown) })()
	return r.runController(runCtx, nil)
}

// runLeaderElected runs the controller while this replica holds the Lease.
func (r *runner) runLeaderElected(ctx context.Context) error {
	o := r.opts
	logger := klog.FromContext(ctx)
	id := o.identity
	if id == "" {
		host, _ := os.Hostname()
		id = host + "_" + rand.String(8)
	}
	lock := &stoppingLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.leaseNamespace, Name: o.leaseName},
		Client:     r.clients.main.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}}
	defer context.AfterFunc(ctx, func() { lock.stopping.Store(true) })()
	// The Lease is released only after the controller has drained its
	// workers: client-go's ReleaseOnCancel alone would release it while a
	// write may still be in flight, and the next leader's initial list could
	// miss that write. So leader election runs on its own context, cancelled
	// once the controller has stopped (or at once when we never led).
	leCtx, leCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer leCancel()
	stopElection := context.AfterFunc(ctx, func() {
		if !r.leading.Load() {
			leCancel()
		}
	})
	defer stopElection()
	var (
		runErr  error
		started atomic.Bool
		ranDone = make(chan struct{})
	)
	lost := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.leaseDuration,
		RenewDeadline:   o.renewDeadline,
		RetryPeriod:     o.retryPeriod,
		ReleaseOnCancel: true,
		Name:            o.leaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				started.Store(true)
				defer close(ranDone)
				logger.Info("Became leader", "identity", id)
				r.leading.Store(true)
				// Stop on SIGTERM (finishing the writes in flight) or on
				// lost leadership (at once), whichever comes first.
				runCtx, cancelRun := context.WithCancelCause(leadCtx)
				defer cancelRun(nil)
				defer context.AfterFunc(ctx, func() { cancelRun(controller.ErrShuttingDown) })()
				// A lost Lease cuts even a graceful drain short.
				runErr = r.runController(runCtx, leadCtx.Done())
				leCancel()
			},
			OnStoppedLeading: func() {
				r.leading.Store(false)
				close(lost)
			},
			OnNewLeader: func(leader string) {
				if leader != id {
					logger.Info("Another replica leads", "leader", leader)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	logger.Info("Waiting to become leader", "lease", klog.KRef(o.leaseNamespace, o.leaseName), "identity", id)
	le.Run(leCtx)
	if started.Load() {
		<-ranDone // the controller has drained its workers
	}
	select {
	case <-lost:
		if ctx.Err() == nil {
			// Another replica may act now; our ledger is no longer the truth.
			return errors.New("lost leadership")
		}
	default:
	}
	return runErr
}

// stoppingLeaseTimeout bounds each request on the Lease once the process is
// stopping.
const stoppingLeaseTimeout = time.Second

// stoppingLock is the Lease lock whose requests, once stopping is set, are
// cut off after stoppingLeaseTimeout: client-go releases the Lease on a
// context of its own, bounded only by the renew deadline (10 s by default),
// and SIGTERM must not wait that long for an API server that does not
// answer. The Lease then expires by itself.
type stoppingLock struct {
	resourcelock.Interface
	stopping atomic.Bool
}

func (l *stoppingLock) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.stopping.Load() {
		return context.WithTimeout(ctx, stoppingLeaseTimeout)
	}
	return ctx, func() {}
}

// Get reads the Lease.
func (l *stoppingLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return l.Interface.Get(ctx)
}

// Create creates the Lease.
func (l *stoppingLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return l.Interface.Create(ctx, ler)
}

// Update writes the Lease (a renewal, or its release).
func (l *stoppingLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return l.Interface.Update(ctx, ler)
}
