package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
)

// restConfig finds the cluster, as kubectl and most controllers do:
// --kubeconfig, else $KUBECONFIG, else the in-cluster config (unless
// outside is set, as the existing provider's --OutSideCluster), else
// ~/.kube/config.
func restConfig(path string, outside bool, getenv func(string) string) (*rest.Config, error) {
	if path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if getenv(clientcmd.RecommendedConfigPathEnvVar) == "" && !outside && getenv("KUBERNETES_SERVICE_HOST") != "" {
		return rest.InClusterConfig()
	}
	if outside {
		// client-go falls back to the in-cluster config when it finds no
		// kubeconfig; --OutSideCluster promises never to.
		raw, err := rules.Load()
		if err != nil {
			return nil, err
		}
		if clientcmdapi.IsConfigEmpty(raw) {
			return nil, errors.New("--OutSideCluster: no kubeconfig in $KUBECONFIG or ~/.kube/config")
		}
		return clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// run runs the controller until ctx is done or leadership is lost.
func run(ctx context.Context, o options) error {
	logger := klog.FromContext(ctx)
	cfg, err := restConfig(o.kubeconfig, o.outsideCluster, os.Getenv)
	if err != nil {
		return fmt.Errorf("find the cluster: %w", err)
	}
	cfg.UserAgent = controller.Component
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	// Events get a client (and so a rate limit) of their own: they must
	// not slow down the writes that assign addresses.
	eventClient, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := controller.NewMetrics(reg)

	var (
		mu      sync.Mutex
		current *controller.Controller
		leading atomic.Bool
	)
	ready := func() bool {
		if !leading.Load() {
			return true // a standby replica is healthy and ready to take over
		}
		mu.Lock()
		defer mu.Unlock()
		return current != nil && current.Ready()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var servers sync.WaitGroup
	serve := func(addr string, h http.Handler, what string) error {
		if addr == "" || addr == "0" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen for %s on %s: %w", what, addr, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		servers.Add(2)
		go func() {
			defer servers.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error(err, "HTTP server failed", "what", what)
			}
		}()
		go func() {
			defer servers.Done()
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			_ = srv.Shutdown(sctx)
		}()
		logger.Info("Serving", "what", what, "address", ln.Addr().String())
		return nil
	}
	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	healthMux := http.NewServeMux()
	healthMux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	healthMux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "caches not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	if err := serve(o.metricsAddr, metricsMux, "metrics"); err != nil {
		return err
	}
	if err := serve(o.healthAddr, healthMux, "health probes"); err != nil {
		return err
	}
	defer servers.Wait()
	defer cancel()

	runController := func(ctx context.Context, abort <-chan struct{}) error {
		c := controller.New(client, func() controller.Options {
			co := o.controllerOptions()
			co.Metrics = metrics
			co.EventClient = eventClient
			co.Abort = abort
			return co
		}())
		mu.Lock()
		current = c
		mu.Unlock()
		return c.Run(ctx)
	}
	if !o.leaderElect {
		leading.Store(true)
		runCtx, cancelRun := context.WithCancelCause(context.WithoutCancel(ctx))
		defer cancelRun(nil)
		defer context.AfterFunc(ctx, func() { cancelRun(controller.ErrShuttingDown) })()
		return runController(runCtx, nil)
	}

	id := o.identity
	if id == "" {
		host, _ := os.Hostname()
		id = host + "_" + rand.String(8)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.leaseNamespace, Name: o.leaseName},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	// The Lease is released only after the controller has drained its
	// workers: client-go's ReleaseOnCancel alone would release it while a
	// write may still be in flight, and the next leader's initial list could
	// miss that write. So leader election runs on its own context, cancelled
	// once the controller has stopped (or at once when we never led).
	leCtx, leCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer leCancel()
	stopElection := context.AfterFunc(ctx, func() {
		if !leading.Load() {
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
				leading.Store(true)
				// Stop on SIGTERM (finishing the writes in flight) or on
				// lost leadership (at once), whichever comes first.
				runCtx, cancelRun := context.WithCancelCause(leadCtx)
				defer cancelRun(nil)
				defer context.AfterFunc(ctx, func() { cancelRun(controller.ErrShuttingDown) })()
				// A lost Lease cuts even a graceful drain short.
				runErr = runController(runCtx, leadCtx.Done())
				leCancel()
			},
			OnStoppedLeading: func() {
				leading.Store(false)
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
