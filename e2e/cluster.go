// Package e2e brings clusters up and down for the end-to-end suite: a
// local control plane (envtest's kube-apiserver and etcd, the controller
// binary as a separate process running with the manifest's RBAC, and,
// when KUBE_VIP_BINARY is set, the real kube-vip in network namespaces),
// or a kind cluster. The suite itself (e2e_test.go) talks to the cluster
// through its client only, like a user.
package e2e

import (
	"context"
	"net/netip"

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
	// RestartController restarts the controller (process or pod).
	RestartController(ctx context.Context) error
	// Prepare makes a Service advertisable (endpoints behind it); called
	// before the Service is created.
	Prepare(ctx context.Context, svc *corev1.Service) error
	// Advertiser checks what kube-vip does, or explains why it cannot.
	Advertiser() (Advertiser, string)
	// Close tears everything down.
	Close() error
}

// Advertiser observes the load-balancer that advertises addresses.
type Advertiser interface {
	// WaitAdvertised waits until addr is advertised and reachable.
	WaitAdvertised(ctx context.Context, svc *corev1.Service, addr netip.Addr) error
	// WaitWithdrawn waits until addr is no longer advertised.
	WaitWithdrawn(ctx context.Context, addr netip.Addr) error
}
