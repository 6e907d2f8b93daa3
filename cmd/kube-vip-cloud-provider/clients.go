package main

import (
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
)

// clients are the binary's connections to the API server.
type clients struct {
	// main writes the addresses, reads the Services and holds the Lease.
	main kubernetes.Interface
	// events records Events. It has a client (and so a rate limit) of its
	// own: Events must not slow down the writes that assign addresses.
	events kubernetes.Interface
	// host is the API server's URL.
	host string
}

// newClients connects to the cluster the options name.
func newClients(o options, getenv func(string) string) (clients, error) {
	cfg, err := clientConfig(o, getenv)
	if err != nil {
		return clients{}, err
	}
	main, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return clients{}, fmt.Errorf("create the client: %w", err)
	}
	events, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return clients{}, fmt.Errorf("create the Event client: %w", err)
	}
	return clients{main: main, events: events, host: cfg.Host}, nil
}

// clientConfig is the config of the clients: the cluster restConfig finds,
// with the User-Agent, rate limits and content type of the options.
func clientConfig(o options, getenv func(string) string) (*rest.Config, error) {
	cfg, err := restConfig(o.kubeconfig, o.master, o.outsideCluster, getenv)
	if err != nil {
		return nil, fmt.Errorf("find the cluster: %w", err)
	}
	cfg.UserAgent = controller.Component
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	if o.contentType != "" {
		cfg.ContentType = o.contentType
	}
	return cfg, nil
}

// restConfig finds the cluster, as kubectl and most controllers do:
// --kubeconfig, else $KUBECONFIG, else the in-cluster config (unless
// outside is set, as the existing provider's --OutSideCluster), else
// ~/.kube/config. A master URL (--master) overrides the server of whichever
// is found, as in the cloud-controller-manager.
func restConfig(path, master string, outside bool, getenv func(string) string) (*rest.Config, error) {
	overrides := &clientcmd.ConfigOverrides{ClusterInfo: clientcmdapi.Cluster{Server: master}}
	if path != "" {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
		return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if getenv(clientcmd.RecommendedConfigPathEnvVar) == "" && !outside && getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, err
		}
		if master != "" {
			cfg.Host = master
		}
		return cfg, nil
	}
	if outside {
		// client-go falls back to the in-cluster config when it finds no
		// kubeconfig; --OutSideCluster promises never to.
		raw, err := rules.Load()
		if err != nil {
			return nil, err
		}
		if clientcmdapi.IsConfigEmpty(raw) && master == "" {
			return nil, errors.New("--OutSideCluster: no kubeconfig in $KUBECONFIG or ~/.kube/config, and no --master")
		}
		return clientcmd.NewDefaultClientConfig(*raw, overrides).ClientConfig()
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
}
