package main

import (
	goflag "flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/envvar"
)

// description is the first line of --help.
const description = "kube-vip-cloud-provider gives every Service of type LoadBalancer an address from the pools of a ConfigMap."

// knownContentType tells whether client-go can send requests for built-in
// types to the API server in content type t (--kube-api-content-type).
func knownContentType(t string) bool {
	return t == "application/json" || t == "application/vnd.kubernetes.protobuf"
}

// options are the binary's settings.
type options struct {
	kubeconfig          string
	master              string
	contentType         string
	configMap           string
	configMapNamespace  string
	leaderElect         bool
	leaseName           string
	leaseNamespace      string
	lockKind            string
	outsideCluster      bool
	leaseDuration       time.Duration
	renewDeadline       time.Duration
	retryPeriod         time.Duration
	metricsAddr         string
	metricsSecure       bool
	metricsCertDir      string
	healthAddr          string
	profiling           bool
	contentionProfiling bool
	workers             int
	addressClaims       bool
	enableLBClass       bool
	lbClassName         string
	identity            string
	qps                 float64
	burst               int
	help                bool
	version             bool
}

func (o options) controllerOptions() controller.Options {
	return controller.Options{
		ConfigMapName:      o.configMap,
		ConfigMapNamespace: o.configMapNamespace,
		Workers:            o.workers,
		AddressClaims:      o.addressClaims,
		Decide: decide.Options{
			EnableLoadBalancerClass: o.enableLBClass,
			LoadBalancerClass:       o.lbClassName,
		},
	}
}

// flagSet is the command line: the flags it is parsed with, and the three
// groups --help shows in order.
type flagSet struct {
	all    *pflag.FlagSet
	own    *pflag.FlagSet // ours, including the cloud-controller-manager flags we honour
	compat *pflag.FlagSet // the other cloud-controller-manager flags: accepted, ignored
	klog   *pflag.FlagSet // klog's own flags
}

// newFlagSet defines every flag the binary accepts, binding ours to o, with
// defaults from the environment.
func newFlagSet(o *options, getenv func(string) string) (*flagSet, error) {
	envOr := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	enableLB := false
	if v := getenv(envvar.EnableLoadBalancerClass); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: not a boolean", envvar.EnableLoadBalancerClass, v)
		}
		enableLB = b
	}
	fs := &flagSet{
		all:    pflag.NewFlagSet(programName, pflag.ContinueOnError),
		own:    pflag.NewFlagSet("own", pflag.ContinueOnError),
		compat: pflag.NewFlagSet("compat", pflag.ContinueOnError),
		klog:   pflag.NewFlagSet("klog", pflag.ContinueOnError),
	}
	f := fs.own
	f.SortFlags = false
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Empty: $KUBECONFIG, else the in-cluster config, else ~/.kube/config.")
	f.StringVar(&o.master, "master", "", "URL of the API server; overrides the one of the kubeconfig or in-cluster config.")
	f.BoolVar(&o.outsideCluster, "OutSideCluster", false, "Never use the in-cluster config: $KUBECONFIG or ~/.kube/config (the existing provider's flag).")
	f.StringVar(&o.configMap, "config-map", envOr(envvar.ConfigMap, controller.DefaultConfigMapName), "Name of the ConfigMap with the pools (env "+envvar.ConfigMap+").")
	f.StringVar(&o.configMapNamespace, "config-map-namespace", envOr(envvar.Namespace, controller.DefaultConfigMapNamespace), "Namespace of the ConfigMap (env "+envvar.Namespace+"), and of the leader-election Lease unless --leader-elect-resource-namespace says otherwise.")
	f.BoolVar(&o.enableLBClass, "enable-loadbalancerclass", enableLB, "Handle only Services of the loadBalancerClass below (env "+envvar.EnableLoadBalancerClass+"); otherwise only Services without a class.")
	f.StringVar(&o.lbClassName, "loadbalancerclass-name", envOr(envvar.LoadBalancerClassName, decide.DefaultLoadBalancerClass), "The loadBalancerClass handled when enabled (env "+envvar.LoadBalancerClassName+").")
	f.IntVar(&o.workers, "workers", 8, "Services processed in parallel.")
	f.BoolVar(&o.addressClaims, "address-claims", true, "Claim every address given out in the API server first (one networking.k8s.io/v1 IPAddress per address, labelled ipaddress.kubernetes.io/managed-by="+"kube-vip-cloud-provider.kube-vip.io), so that two active controllers never give one address to two Services; off by itself when the API server does not serve IPAddress.")
	f.IntVar(&o.workers, "concurrent-service-syncs", 8, "Alias of --workers (the cloud-controller-manager's name).")
	f.Float64Var(&o.qps, "kube-api-qps", 1000, "Requests per second to the API server (a client-side cap; the API server's priority and fairness is the real guard).")
	f.IntVar(&o.burst, "kube-api-burst", 2000, "Burst of requests to the API server above --kube-api-qps.")
	f.StringVar(&o.contentType, "kube-api-content-type", "", `Content type of requests to the API server: "application/json" or "application/vnd.kubernetes.protobuf"; empty: client-go's default.`)
	f.BoolVar(&o.leaderElect, "leader-elect", true, "Elect a leader on a Lease so that several replicas are safe.")
	f.StringVar(&o.leaseName, "leader-elect-lease-name", "kube-vip-cloud-controller", "Name of the leader-election Lease.")
	f.StringVar(&o.leaseName, "leader-elect-resource-name", "kube-vip-cloud-controller", "Alias of --leader-elect-lease-name (the cloud-controller-manager's name).")
	f.StringVar(&o.leaseNamespace, "leader-elect-resource-namespace", "", "Namespace of the leader-election Lease; default the ConfigMap's namespace.")
	f.StringVar(&o.lockKind, "leader-elect-resource-lock", "leases", `Kind of the leader-election lock; only "leases".`)
	f.StringVar(&o.identity, "leader-elect-identity", "", "Identity in the Lease; default hostname_random.")
	f.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a non-leader waits before taking over an unrenewed Lease.")
	f.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader retries renewing before giving up leadership.")
	f.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often leader-election actions are retried.")
	f.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address of the /metrics endpoint; empty or 0 disables it.")
	f.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve /metrics over HTTPS to clients whose bearer token the API server authenticates (TokenReview) and allows to get the non-resource URL /metrics (SubjectAccessReview); false: plain HTTP to anyone.")
	f.StringVar(&o.metricsCertDir, "metrics-cert-dir", "", "Directory with tls.crt and tls.key for /metrics (read again when they change); empty: a self-signed certificate made at start.")
	f.StringVar(&o.healthAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints; empty or 0 disables them.")
	f.BoolVar(&o.profiling, "profiling", false, "Serve pprof under /debug/pprof/ on the --health-probe-bind-address (unauthenticated: off by default, unlike the cloud-controller-manager).")
	f.BoolVar(&o.contentionProfiling, "contention-profiling", false, "Also record block and mutex profiles when --profiling is on.")
	f.BoolVar(&o.version, "version", false, "Print the version and exit.")
	f.BoolVarP(&o.help, "help", "h", false, "Print this help and exit.")

	gofs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gofs)
	fs.klog.AddGoFlagSet(gofs)

	if err := addCompatFlags(fs.compat, func(name string) bool {
		return fs.own.Lookup(name) != nil || fs.klog.Lookup(name) != nil
	}); err != nil {
		return nil, err
	}
	for _, g := range []*pflag.FlagSet{fs.own, fs.compat, fs.klog} {
		fs.all.AddFlagSet(g)
	}
	// Errors are reported by the caller and --help prints the usage; pflag
	// itself only warns (on stderr) about a deprecated flag that is set.
	fs.all.Usage = func() {}
	return fs, nil
}

// parseFlags reads the command line args, with defaults from the
// environment. With --help or --version set, the options need not be
// complete: the caller prints and exits.
func parseFlags(args []string, getenv func(string) string) (options, *flagSet, error) {
	var o options
	fs, err := newFlagSet(&o, getenv)
	if err != nil {
		return options{}, nil, err
	}
	if err := fs.all.Parse(args); err != nil {
		return options{}, nil, err
	}
	if o.help || o.version {
		return o, fs, nil
	}
	if o.lockKind != "leases" {
		return options{}, nil, fmt.Errorf("--leader-elect-resource-lock=%q: only \"leases\" is supported", o.lockKind)
	}
	if o.leaseNamespace == "" {
		o.leaseNamespace = o.configMapNamespace
	}
	if fs.all.NArg() > 0 {
		return options{}, nil, fmt.Errorf("unexpected arguments: %v", fs.all.Args())
	}
	if o.qps <= 0 || o.burst < 1 {
		return options{}, nil, fmt.Errorf("--kube-api-qps=%v --kube-api-burst=%d: both must be positive", o.qps, o.burst)
	}
	if o.workers < 1 {
		return options{}, nil, fmt.Errorf("--workers=%d: must be at least 1", o.workers)
	}
	if o.metricsCertDir != "" && !o.metricsSecure {
		return options{}, nil, fmt.Errorf("--metrics-cert-dir=%q: only with --metrics-secure", o.metricsCertDir)
	}
	if o.contentType != "" && !knownContentType(o.contentType) {
		return options{}, nil, fmt.Errorf("--kube-api-content-type=%q: want application/json or application/vnd.kubernetes.protobuf", o.contentType)
	}
	return o, fs, nil
}

// printHelp writes --help: our flags, then those accepted for
// compatibility, then klog's.
func (fs *flagSet) printHelp(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s [flags]\n\nFlags:\n%s\n", description, programName, fs.own.FlagUsages())
	fmt.Fprintf(w, "Accepted for compatibility with the cloud-controller-manager, and ignored (logged at start when set):\n%s\n", fs.compat.FlagUsages())
	fmt.Fprintf(w, "Logging (klog):\n%s", fs.klog.FlagUsages())
}
