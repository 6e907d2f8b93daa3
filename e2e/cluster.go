// Package e2e brings clusters up and down for the end-to-end suite: a
// local control plane (envtest's kube-apiserver and etcd, the controller
// binary as a separate process running with the manifest's ServiceAccount
// and RBAC, and, when KUBE_VIP_BINARY is set, the real kube-vip in network
// namespaces), or a kind cluster made with the sigs.k8s.io/kind library.
// The suite itself (e2e_test.go) talks to the cluster through its client
// only, like a user.
//
// E2E_PROVIDER selects the cluster: "local" (the default) or "kind".
package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// Cluster is what the suite needs from a cluster.
type Cluster interface {
	// Name says which provider this is ("local", "kind").
	Name() string
	// Client talks to the cluster as an administrator.
	Client() kubernetes.Interface
	// Pools returns the IPv4 pool the suite may use, and an IPv6 one when
	// the cluster supports dual-stack Services ("" otherwise).
	Pools() (v4, v6 string)
	// SetConfig writes the kubevip ConfigMap's data.
	SetConfig(ctx context.Context, data map[string]string) error
	// RestartController restarts the controller (process or pod) and
	// returns once the new one runs.
	RestartController(ctx context.Context) error
	// Prepare makes a Service advertisable (endpoints behind it); called
	// before the Service is created.
	Prepare(ctx context.Context, svc *corev1.Service) error
	// Advertiser checks what kube-vip does, or explains why it cannot.
	Advertiser() (Advertiser, string)
	// Diagnostics is what helps to understand a failure (logs).
	Diagnostics() string
	// Close tears everything down.
	Close() error
}

// Advertiser observes the load-balancer that advertises addresses.
type Advertiser interface {
	// WaitAdvertised waits until addr is advertised and reachable.
	WaitAdvertised(ctx context.Context, svc *corev1.Service, addr netip.Addr) error
	// WaitWithdrawn waits until addr is no longer advertised.
	WaitWithdrawn(ctx context.Context, addr netip.Addr) error
	// Advertised says whether addr is advertised now.
	Advertised(ctx context.Context, addr netip.Addr) (bool, error)
}

// Auditor is a cluster whose API server keeps an audit log the suite can
// read (the local one).
type Auditor interface {
	// Requests returns the audited requests so far.
	Requests() ([]AuditEvent, error)
}

// NodeLoser is a cluster with several nodes running kube-vip, where one
// can be lost (kind).
type NodeLoser interface {
	// SpreadEchoes is Prepare with a backend on every node that runs
	// kube-vip.
	SpreadEchoes(ctx context.Context, svc *corev1.Service) error
	// NodesAdvertising names the nodes addr is on.
	NodesAdvertising(ctx context.Context, addr netip.Addr) ([]string, error)
	// LoseNode stops, at once, the node addr is on, and names it.
	LoseNode(ctx context.Context, addr netip.Addr) (string, error)
	// RestoreNode brings the lost node back and waits until it and
	// everything installed run again.
	RestoreNode(ctx context.Context) error
}

// ChartInstaller is a cluster the Helm chart can be installed on, in
// place of the manifest's controller (kind).
type ChartInstaller interface {
	// InstallChart installs the chart with pool as its global pool, and
	// returns how to uninstall it (and bring the manifest's back).
	InstallChart(ctx context.Context, pool string) (uninstall func(context.Context) error, err error)
}

// Provider is the E2E_PROVIDER of this run ("local" when unset).
func Provider() string {
	if p := os.Getenv("E2E_PROVIDER"); p != "" {
		return p
	}
	return "local"
}

// Options are what a run may ask of its cluster.
type Options struct {
	// Keep leaves a kind cluster in place at the end.
	Keep bool
}

// New brings up the cluster of E2E_PROVIDER.
func New(ctx context.Context, o Options) (Cluster, error) {
	switch p := Provider(); p {
	case "local":
		return NewLocal(ctx)
	case "kind":
		return NewKind(ctx, o.Keep)
	default:
		return nil, fmt.Errorf("E2E_PROVIDER=%q: must be local or kind", p)
	}
}
