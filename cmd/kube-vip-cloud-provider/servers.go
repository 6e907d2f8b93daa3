package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// servers are the binary's HTTP endpoints: /metrics on one address (HTTPS
// with authentication and authorization through the API server unless
// --metrics-secure=false), /healthz, /readyz (and with --profiling
// /debug/pprof/) in plain HTTP on another.
type servers struct {
	wg sync.WaitGroup
}

// startServers starts the endpoints the options ask for; they stop when ctx
// is done. ready answers /readyz: nil when ready, else why not; client
// reviews the tokens of /metrics.
func startServers(ctx context.Context, o options, reg *prometheus.Registry, client kubernetes.Interface, ready func() error) (*servers, error) {
	s := &servers{}
	metrics := http.NewServeMux()
	var h http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	var tlsCfg *tls.Config
	if o.metricsSecure && o.metricsAddr != "" && o.metricsAddr != "0" {
		h = newMetricsAuth(client).wrap(h)
		var err error
		if tlsCfg, err = metricsTLSConfig(o.metricsCertDir); err != nil {
			return s, err
		}
	}
	metrics.Handle("/metrics", h)
	if err := s.serve(ctx, o.metricsAddr, metrics, tlsCfg, "metrics"); err != nil {
		return s, err
	}
	if err := s.serve(ctx, o.healthAddr, healthMux(o, ready), nil, "health probes"); err != nil {
		return s, err
	}
	return s, nil
}

// healthMux serves /healthz, /readyz and, with --profiling, pprof.
func healthMux(o options, ready func() error) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	if o.profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		if o.contentionProfiling {
			runtime.SetBlockProfileRate(1)
			runtime.SetMutexProfileFraction(1)
		}
	}
	return mux
}

// serve serves h on addr, over TLS when tlsCfg is set, until ctx is done;
// an empty addr or "0" serves nothing.
func (s *servers) serve(ctx context.Context, addr string, h http.Handler, tlsCfg *tls.Config, what string) error {
	if addr == "" || addr == "0" {
		return nil
	}
	logger := klog.FromContext(ctx)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for %s on %s: %w", what, addr, err)
	}
	scheme := "http"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "HTTP server failed", "what", what)
		}
	}()
	go func() {
		defer s.wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	logger.Info("Serving", "what", what, "address", ln.Addr().String(), "scheme", scheme)
	return nil
}

// wait returns once every server has shut down.
func (s *servers) wait() { s.wg.Wait() }
