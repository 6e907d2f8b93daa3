package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

// Local is a control plane on this machine: envtest's kube-apiserver and
// etcd, and the controller binary run as a separate process with the
// ServiceAccount token of the manifest, so a missing RBAC rule fails.
type Local struct {
	env        *envtest.Environment
	cfg        *rest.Config
	client     kubernetes.Interface
	dir        string
	bin        string
	kubeconfig string // the controller's: the ServiceAccount's token
	admin      string // an administrator's, for kube-vip and users
	cmd        *exec.Cmd
	log        *os.File
	kubeVIP    *kubeVIP
	kvReason   string
}

// NewLocal starts the control plane and the controller.
func NewLocal(ctx context.Context) (*Local, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: the local cluster needs kube-apiserver and etcd; " +
			"run `make test` or `make e2e-local`, which install them")
	}
	l := &Local{env: &envtest.Environment{}}
	l.env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/16,fd00:10:96::/112")
	var err error
	if l.dir, err = os.MkdirTemp("", "kvcp-e2e-"); err != nil {
		return nil, err
	}
	if l.cfg, err = l.env.Start(); err != nil {
		return nil, fmt.Errorf("start the control plane: %w", err)
	}
	l.client = kubernetes.NewForConfigOrDie(l.cfg)
	steps := []func(context.Context) error{l.applyRBAC, l.writeKubeconfigs, l.build, l.startController}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			_ = l.Close()
			return nil, err
		}
	}
	if bin := os.Getenv("KUBE_VIP_BINARY"); bin == "" {
		l.kvReason = "KUBE_VIP_BINARY is not set: kube-vip is not run, so advertising is not checked (see the README to build it)"
	} else if l.kubeVIP, err = startKubeVIP(ctx, bin, l.admin, l.dir, l.cfg); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("start kube-vip: %w", err)
	}
	return l, nil
}

// applyRBAC server-side applies the manifest's ServiceAccount and RBAC
// (not the StatefulSet: the controller runs as a process here).
func (l *Local) applyRBAC(ctx context.Context) error {
	objs, err := manifest.Objects(manifest.CloudController)
	if err != nil {
		return err
	}
	objs = slices.DeleteFunc(objs, func(u *unstructured.Unstructured) bool { return u.GetKind() == "StatefulSet" })
	return manifest.Apply(ctx, l.cfg, objs, metav1.PatchOptions{FieldManager: "e2e"})
}

// writeKubeconfigs writes the controller's kubeconfig (a ServiceAccount
// token from the TokenRequest API) and an administrator's.
func (l *Local) writeKubeconfigs(ctx context.Context) error {
	exp := int64(24 * 3600)
	tr, err := l.client.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, "kube-vip-cloud-controller",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("mint the ServiceAccount's token: %w", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: l.cfg.Host, CertificateAuthorityData: l.cfg.CAData}
	kc.AuthInfos["kube-vip-cloud-controller"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "kube-vip-cloud-controller"}
	kc.CurrentContext = "local"
	l.kubeconfig = filepath.Join(l.dir, "controller.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, l.kubeconfig); err != nil {
		return err
	}
	user, err := l.env.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return err
	}
	l.admin = filepath.Join(l.dir, "admin.kubeconfig")
	return os.WriteFile(l.admin, raw, 0o600)
}

// build compiles the controller binary from this repository.
func (l *Local) build(context.Context) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	l.bin = filepath.Join(l.dir, "kube-vip-cloud-provider")
	cmd := exec.Command("go", "build", "-o", l.bin, "./cmd/kube-vip-cloud-provider")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the controller: %v\n%s", err, out)
	}
	return nil
}

// repoRoot finds the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func (l *Local) startController(context.Context) error {
	var err error
	if l.log == nil {
		if l.log, err = os.Create(filepath.Join(l.dir, "controller.log")); err != nil {
			return err
		}
	}
	// Run as a user would: only the kubeconfig, the real defaults
	// (leader election on), shorter leases so a restart is quick.
	l.cmd = exec.Command(l.bin, "--kubeconfig="+l.kubeconfig, "--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms")
	l.cmd.Env = append(os.Environ(), "KUBECONFIG=")
	l.cmd.Stdout, l.cmd.Stderr = l.log, l.log
	return l.cmd.Start()
}

func (l *Local) stopController() error {
	if l.cmd == nil || l.cmd.Process == nil {
		return nil
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- l.cmd.Wait() }()
	select {
	case err := <-done:
		l.cmd = nil
		return err
	case <-time.After(20 * time.Second):
		_ = l.cmd.Process.Kill()
		<-done
		l.cmd = nil
		return errors.New("the controller did not stop within 20s of SIGTERM")
	}
}

// Name implements Cluster.
func (l *Local) Name() string { return "local" }

// Client implements Cluster.
func (l *Local) Client() kubernetes.Interface { return l.client }

// Pools implements Cluster: documentation ranges; the local API server has
// a dual-stack Service range.
func (l *Local) Pools() (string, string) { return "198.51.100.0/25", "2001:db8:e2e::/120" }

// SetConfig implements Cluster.
func (l *Local) SetConfig(ctx context.Context, data map[string]string) error {
	return setConfigMap(ctx, l.client, data)
}

func setConfigMap(ctx context.Context, c kubernetes.Interface, data map[string]string) error {
	cm, err := c.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubevip", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "kubevip", Namespace: "kube-system"}, Data: data}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cm.Data = data
	_, err = c.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// RestartController implements Cluster: SIGTERM, then a new process.
func (l *Local) RestartController(ctx context.Context) error {
	if err := l.stopController(); err != nil {
		return err
	}
	return l.startController(ctx)
}

// Prepare implements Cluster: envtest runs no controller-manager, so the
// EndpointSlice kube-vip waits for is made here.
func (l *Local) Prepare(ctx context.Context, svc *corev1.Service) error {
	if l.kubeVIP == nil {
		return nil
	}
	return l.kubeVIP.endpoints(ctx, l.client, svc)
}

// Advertiser implements Cluster.
func (l *Local) Advertiser() (Advertiser, string) {
	if l.kubeVIP == nil {
		return nil, l.kvReason
	}
	return l.kubeVIP, ""
}

// ControllerLog returns what the controller printed, for failure reports.
func (l *Local) ControllerLog() string {
	raw, _ := os.ReadFile(filepath.Join(l.dir, "controller.log"))
	s := string(raw)
	if len(s) > 20000 {
		s = "...\n" + s[len(s)-20000:]
	}
	return strings.TrimSpace(s)
}

// Close implements Cluster.
func (l *Local) Close() error {
	var errs []error
	if l.kubeVIP != nil {
		errs = append(errs, l.kubeVIP.stop())
	}
	if err := l.stopController(); err != nil {
		errs = append(errs, err)
	}
	if l.log != nil {
		l.log.Close()
	}
	if l.env != nil {
		errs = append(errs, l.env.Stop())
	}
	if l.dir != "" {
		os.RemoveAll(l.dir)
	}
	return errors.Join(errs...)
}
