package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/ipaddress"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/envvar"
	"github.com/kvcp-dev/kube-vip-cloud-provider/sim"
)

func plan(args []string, out, errOut io.Writer) error {
	fs := newFlags("plan")
	config := fs.String("config", "", "the new ConfigMap (a manifest or a map of keys)")
	kubeconfig := fs.String("kubeconfig", "", "read the live Services and ConfigMap from this cluster (default $KUBECONFIG or ~/.kube/config)")
	scenario := fs.String("scenario", "", "read the Services and ConfigMap a scenario leaves instead of a cluster")
	cmName := fs.String("config-map", "kubevip", "the ConfigMap's name")
	cmNS := fs.String("namespace", "kube-system", "the ConfigMap's namespace")
	enableClass := fs.Bool("enable-loadbalancerclass", false, "handle only Services of --loadbalancerclass-name, as the controller so started (default: env "+envvar.EnableLoadBalancerClass+"; with --scenario, its loadBalancerClass)")
	className := fs.String("loadbalancerclass-name", "", "the loadBalancerClass handled (default: env "+envvar.LoadBalancerClassName+", else "+decide.DefaultLoadBalancerClass+")")
	allowInvalid := fs.Bool("allow-invalid", false, "exit 0 even when the new ConfigMap has a malformed key")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *config == "" {
		return errors.New("plan: --config NEW.yaml is required")
	}
	newData, err := readConfig(*config)
	if err != nil {
		return err
	}
	var svcs []*corev1.Service
	var claims []engine.Claim
	var oldData map[string]string
	var opts decide.Options
	if *scenario != "" {
		sc, err := sim.Load(*scenario)
		if err != nil {
			return err
		}
		if svcs, oldData, err = sc.Services(); err != nil {
			return err
		}
		opts = sc.ControllerOptions()
	} else {
		// As the controller: the environment it runs with, then the flags.
		if v := os.Getenv(envvar.EnableLoadBalancerClass); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: not a boolean", envvar.EnableLoadBalancerClass, v)
			}
			opts.EnableLoadBalancerClass = b
		}
		opts.LoadBalancerClass = os.Getenv(envvar.LoadBalancerClassName)
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = *kubeconfig
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if clientcmd.IsEmptyConfig(err) {
			return errors.New("plan: no cluster to read the Services from: set KUBECONFIG, pass --kubeconfig PATH, or plan against a scenario with --scenario FILE")
		}
		if err != nil {
			return fmt.Errorf("plan: find the cluster: %w", err)
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		ctx := context.Background()
		list, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list Services: %w", err)
		}
		for i := range list.Items {
			svcs = append(svcs, &list.Items[i])
		}
		if claims, err = liveClaims(ctx, client); err != nil {
			return err
		}
		if claims == nil {
			fmt.Fprintln(errOut, "note: the API server does not serve networking.k8s.io/v1 IPAddress (Kubernetes older than 1.33, or the API disabled): planning without address claims, as the controller runs")
		}
		cm, err := client.CoreV1().ConfigMaps(*cmNS).Get(ctx, *cmName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			// Not installed yet (a switch from another tool): no pools now.
			fmt.Fprintf(out, "note: no ConfigMap %s/%s yet: planning against no pools\n", *cmNS, *cmName)
		case err != nil:
			return fmt.Errorf("read ConfigMap %s/%s: %w", *cmNS, *cmName, err)
		default:
			oldData = cm.Data
		}
	}
	if set["enable-loadbalancerclass"] {
		opts.EnableLoadBalancerClass = *enableClass
	}
	if set["loadbalancerclass-name"] {
		opts.LoadBalancerClass = *className
	}
	if opts.EnableLoadBalancerClass && opts.LoadBalancerClass == "" {
		opts.LoadBalancerClass = decide.DefaultLoadBalancerClass
	}
	p, err := sim.MakePlan(svcs, claims, oldData, newData, opts)
	if sim.IsFailure(err) {
		// The controller's engine broke an invariant on these Services.
		return failed{fmt.Errorf("plan: %w", err)}
	}
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if err := p.Write(out); err != nil {
		return err
	}
	if len(p.MalformedKeys) > 0 && !*allowInvalid {
		return failed{fmt.Errorf("plan: %s: the new ConfigMap has malformed keys (%s); the controller would report them and keep their last good values. Fix them, or pass --allow-invalid to accept that",
			*config, strings.Join(p.MalformedKeys, ", "))}
	}
	return nil
}

// liveClaims reads the cluster's address claims (IPAddress objects) as
// the controller's claim store does; nil when the API server does not
// serve them (Kubernetes older than 1.33, or the API disabled), non-nil
// (maybe empty) when it does.
func liveClaims(ctx context.Context, client kubernetes.Interface) ([]engine.Claim, error) {
	served, err := ipaddress.Served(client.Discovery())
	if err != nil || !served {
		return nil, err
	}
	list, err := client.NetworkingV1().IPAddresses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list IPAddresses: %w", err)
	}
	claims := make([]engine.Claim, 0, len(list.Items))
	for i := range list.Items {
		if c, ok := ipaddress.Claim(&list.Items[i]); ok {
			claims = append(claims, c)
		}
	}
	return claims, nil
}
