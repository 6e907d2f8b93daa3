package controller

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// Metrics are the controller's Prometheus metrics. Pool sizes are computed
// when scraped, from the ledger, so they are never out of date.
type Metrics struct {
	allocations  prometheus.Counter
	failures     *prometheus.CounterVec
	reconcile    *prometheus.HistogramVec
	configErrors prometheus.Gauge
	// claimConflicts counts the addresses our Services hold that another
	// manager's IPAddress claims.
	claimConflicts prometheus.Gauge
	pool           *prometheus.Desc
	queueDepth     *prometheus.Desc
	// c is the controller scraped; a new leader term attaches a new one
	// while /metrics may be serving.
	c atomic.Pointer[Controller]
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		allocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kube_vip_cloud_provider_allocations_total",
			Help: "Services given new addresses.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kube_vip_cloud_provider_allocation_failures_total",
			Help: "Failed allocation attempts, by reason (PoolExhausted, NoPool, FamilyUnavailable, Conflict, InvalidRequest).",
		}, []string{"reason"}),
		reconcile: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kube_vip_cloud_provider_reconcile_duration_seconds",
			Help:    "Time to handle one queue key, by result.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"result"}),
		configErrors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kube_vip_cloud_provider_config_invalid_keys",
			Help: "Keys of the ConfigMap that are malformed (their last good value keeps serving).",
		}),
		claimConflicts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kube_vip_cloud_provider_address_claim_conflicts",
			Help: "Addresses held by our Services that another manager's IPAddress claims (found by the last repair).",
		}),
		pool: prometheus.NewDesc("kube_vip_cloud_provider_pool_addresses",
			"Addresses of a pool (namespace or global) by family and state: size, used, free.",
			[]string{"pool", "family", "state"}, nil),
		queueDepth: prometheus.NewDesc("kube_vip_cloud_provider_queue_depth",
			"Keys waiting in the work queue.", nil, nil),
	}
	for _, r := range []allocator.Reason{allocator.ReasonExhausted, allocator.ReasonNoPool,
		allocator.ReasonFamilyUnavailable, allocator.ReasonConflict, allocator.ReasonInvalidRequest} {
		m.failures.WithLabelValues(string(r))
	}
	reg.MustRegister(m.allocations, m.failures, m.reconcile, m.configErrors, m.claimConflicts, m)
	return m
}

func (m *Metrics) attach(c *Controller) { m.c.Store(c) }

// Observe implements engine.Observer: allocations and failures.
func (m *Metrics) Observe(o engine.Outcome) {
	switch {
	case o.What == engine.Written && o.Decision.Action == decide.Write && o.Decision.Allocated:
		m.allocations.Inc()
	case o.What == engine.Failed, o.What == engine.Held && o.Decision.Err != nil:
		m.failures.WithLabelValues(engine.FailureReason(o.Decision.Err)).Inc()
	}
}

// ConfigLoaded implements engine.Observer: the malformed keys.
func (m *Metrics) ConfigLoaded(errs []*allocator.KeyError) { m.configErrors.Set(float64(len(errs))) }

func (m *Metrics) observeReconcile(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reconcile.WithLabelValues(result).Observe(d.Seconds())
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.pool
	ch <- m.queueDepth
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	c := m.c.Load()
	if c == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(m.queueDepth, prometheus.GaugeValue, float64(c.queue.Len()))
	c.engine.Inspect(func(cfg *allocator.Config, usage *allocator.Usage) {
		if cfg != nil {
			m.collectPools(ch, cfg, usage)
		}
	})
}

// collectPools sends the size, used and free gauges of every pool.
func (m *Metrics) collectPools(ch chan<- prometheus.Metric, cfg *allocator.Config, usage *allocator.Usage) {
	for _, p := range cfg.Pools() {
		for _, f := range []allocator.Family{allocator.IPv4, allocator.IPv6} {
			if !p.Has(f) {
				continue
			}
			size, used := p.Size(f), usage.Used(p, f)
			for state, v := range map[string]allocator.Count{"size": size, "used": used, "free": size.Sub(used)} {
				ch <- prometheus.MustNewConstMetric(m.pool, prometheus.GaugeValue, v.Float64(), p.Name(), f.String(), state)
			}
		}
	}
}
