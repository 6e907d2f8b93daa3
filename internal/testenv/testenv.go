// Package testenv starts the envtest control plane (a real kube-apiserver
// and etcd) for tests, and fails them loudly when it is not installed.
package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Missing is the message of a test that cannot find the control plane.
const Missing = "KUBEBUILDER_ASSETS is not set: this test needs a real kube-apiserver and etcd. " +
	"Run `make test`, which installs them, or export KUBEBUILDER_ASSETS=$(hack/envtest.sh | tail -n 1)."

// Start starts a control plane for t, stopped when t ends, and returns its
// config and the path of an administrator's kubeconfig file.
func Start(t testing.TB) (*rest.Config, string) {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith is Start with kube-apiserver flags set (name without dashes to
// value), e.g. a wider "service-cluster-ip-range" or a "runtime-config".
func StartWith(t testing.TB, apiServerFlags map[string]string) (*rest.Config, string) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal(Missing)
	}
	env := &envtest.Environment{}
	for k, v := range apiServerFlags {
		env.ControlPlane.GetAPIServer().Configure().Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

// ConfigMap creates the kubevip ConfigMap in kube-system (and that
// namespace, when the control plane has none) with data.
func ConfigMap(t testing.TB, client kubernetes.Interface, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace kube-system: %v", err)
	}
	if _, err := client.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubevip", Namespace: "kube-system"},
		Data:       data,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ConfigMap kube-system/kubevip: %v", err)
	}
}
