package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// Environment variables of the compatibility contract. A flag given on the
// command line wins over its variable.
const (
	EnvConfigMap               = "KUBEVIP_CONFIG_MAP"
	EnvNamespace               = "KUBEVIP_NAMESPACE"
	EnvEnableLoadBalancerClass = "KUBEVIP_ENABLE_LOADBALANCERCLASS"
	EnvLoadBalancerClassName   = "KUBEVIP_CUSTOM_LOADBALANCERCLASS_NAME"
)

// options are the binary's settings.
type options struct {
	kubeconfig         string
	configMap          string
	configMapNamespace string
	leaderElect        bool
	leaseName          string
	leaseNamespace     string
	outsideCluster     bool
	leaseDuration      time.Duration
	renewDeadline      time.Duration
	retryPeriod        time.Duration
	metricsAddr        string
	healthAddr         string
	workers            int
	enableLBClass      bool
	lbClassName        string
	identity           string
	qps                float64
	burst              int
}

func (o options) controllerOptions() controller.Options {
	return controller.Options{
		ConfigMapName:      o.configMap,
		ConfigMapNamespace: o.configMapNamespace,
		Workers:            o.workers,
		Decide: decide.Options{
			EnableLoadBalancerClass: o.enableLBClass,
			LoadBalancerClass:       o.lbClassName,
		},
	}
}

// parseFlags reads flags from args, with defaults from the environment.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) (options, error) {
	envOr := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	enableLB := false
	if v := getenv(EnvEnableLoadBalancerClass); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return options{}, fmt.Errorf("%s=%q: not a boolean", EnvEnableLoadBalancerClass, v)
		}
		enableLB = b
	}
	var o options
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Empty: $KUBECONFIG, else the in-cluster config, else ~/.kube/config.")
	fs.BoolVar(&o.outsideCluster, "OutSideCluster", false, "Never use the in-cluster config: $KUBECONFIG or ~/.kube/config (the existing provider's flag).")
	fs.StringVar(&o.configMap, "config-map", envOr(EnvConfigMap, controller.DefaultConfigMapName), "Name of the ConfigMap with the pools (env "+EnvConfigMap+").")
	fs.StringVar(&o.configMapNamespace, "config-map-namespace", envOr(EnvNamespace, controller.DefaultConfigMapNamespace), "Namespace of the ConfigMap (env "+EnvNamespace+"), and of the leader-election Lease unless --leader-elect-resource-namespace says otherwise.")
	fs.StringVar(&o.leaseNamespace, "leader-elect-resource-namespace", "", "Namespace of the leader-election Lease; default the ConfigMap's namespace.")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "Elect a leader on a Lease so that several replicas are safe.")
	fs.StringVar(&o.leaseName, "leader-elect-lease-name", "kube-vip-cloud-controller", "Name of the leader-election Lease.")
	// The existing provider's manifest passes these cloud-controller-manager
	// spellings; accept them so its manifest keeps working.
	fs.StringVar(&o.leaseName, "leader-elect-resource-name", "kube-vip-cloud-controller", "Alias of --leader-elect-lease-name.")
	fs.IntVar(&o.workers, "concurrent-service-syncs", 8, "Alias of --workers.")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a non-leader waits before taking over an unrenewed Lease.")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader retries renewing before giving up leadership.")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often leader-election actions are retried.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the /metrics endpoint; empty or 0 disables it.")
	fs.StringVar(&o.healthAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints; empty or 0 disables them.")
	fs.IntVar(&o.workers, "workers", 8, "Services processed in parallel.")
	fs.BoolVar(&o.enableLBClass, "enable-loadbalancerclass", enableLB, "Handle only Services of the loadBalancerClass below (env "+EnvEnableLoadBalancerClass+"); otherwise only Services without a class.")
	fs.StringVar(&o.lbClassName, "loadbalancerclass-name", envOr(EnvLoadBalancerClassName, decide.DefaultLoadBalancerClass), "The loadBalancerClass handled when enabled (env "+EnvLoadBalancerClassName+").")
	fs.StringVar(&o.identity, "leader-elect-identity", "", "Identity in the Lease; default hostname_random.")
	fs.Float64Var(&o.qps, "kube-api-qps", 1000, "Requests per second to the API server (a client-side cap; the API server's priority and fairness is the real guard).")
	fs.IntVar(&o.burst, "kube-api-burst", 2000, "Burst of requests to the API server above --kube-api-qps.")
	lock := fs.String("leader-elect-resource-lock", "leases", `Kind of the leader-election lock; only "leases" (accepted for the existing provider's manifests).`)
	// Flags of Kubernetes' cloud-controller-manager that manifests written
	// for the existing provider may pass. They mean nothing here: accepted,
	// and ignored, so that such a manifest keeps working.
	for _, name := range []string{"cloud-provider", "cloud-config", "bind-address", "controllers", "cluster-cidr",
		"authorization-always-allow-paths", "cluster-name"} {
		fs.String(name, "", "Ignored (a cloud-controller-manager flag, accepted for compatibility).")
	}
	fs.Int("secure-port", 0, "Ignored (a cloud-controller-manager flag, accepted for compatibility).")
	for _, name := range []string{"authentication-skip-lookup", "use-service-account-credentials", "configure-cloud-routes", "allocate-node-cidrs"} {
		fs.Bool(name, false, "Ignored (a cloud-controller-manager flag, accepted for compatibility).")
	}
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if *lock != "leases" {
		return options{}, fmt.Errorf("--leader-elect-resource-lock=%q: only \"leases\" is supported", *lock)
	}
	if o.leaseNamespace == "" {
		o.leaseNamespace = o.configMapNamespace
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.qps <= 0 || o.burst < 1 {
		return options{}, fmt.Errorf("--kube-api-qps=%v --kube-api-burst=%d: both must be positive", o.qps, o.burst)
	}
	if o.workers < 1 {
		return options{}, fmt.Errorf("--workers=%d: must be at least 1", o.workers)
	}
	return o, nil
}
