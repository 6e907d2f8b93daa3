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
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kvcp-dev/kube-vip-cloud-provider/e2e/hostcheck"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

// The ServiceAccounts the processes run as: the manifest's, and the one of
// kind/kube-vip.yaml.
const (
	controllerSA = "kube-vip-cloud-controller"
	kubeVIPSA    = "kube-vip"
	// ControllerUser is the user the controller must act as.
	ControllerUser = "system:serviceaccount:kube-system:" + controllerSA
)

// Local is a control plane on this machine: envtest's kube-apiserver and
// etcd, and the controller binary run as a separate process with the
// manifest's ServiceAccount token, so a missing RBAC rule fails. With
// KUBE_VIP_BINARY, kube-vip runs too (see kubevip.go), with the
// ServiceAccount and RBAC of kind/kube-vip.yaml.
type Local struct {
	env        *envtest.Environment
	cfg        *rest.Config
	client     kubernetes.Interface
	root       string // the repository
	dir        string // everything this run writes
	bin        string
	kubeconfig string // the controller's: the ServiceAccount's token
	audit      string
	cmd        *exec.Cmd
	exited     chan struct{} // closed when cmd ends
	exitErr    error
	log        *os.File
	kubeVIP    *kubeVIP
	kvReason   string
}

// NewLocal starts the control plane, the controller and, when
// KUBE_VIP_BINARY is set, kube-vip. KUBEBUILDER_ASSETS must name the
// directory of kube-apiserver and etcd.
func NewLocal(ctx context.Context) (*Local, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New(testenv.Missing)
	}
	// Before anything starts: a machine that cannot run kube-vip stops
	// here, saying what to install.
	kvBin := os.Getenv("KUBE_VIP_BINARY")
	if kvBin != "" {
		if err := hostcheck.Local().KubeVIP(kvBin); err != nil {
			return nil, err
		}
	}
	l := &Local{env: &envtest.Environment{}}
	var err error
	if l.root, err = repoRoot(); err != nil {
		return nil, err
	}
	if l.dir, err = os.MkdirTemp("", "kvcp-e2e-"); err != nil {
		return nil, err
	}
	policy := filepath.Join(l.dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	l.audit = filepath.Join(l.dir, "audit.log")
	// A Service range wide enough for 200 and more Services, dual-stack;
	// every request audited, so a spec can tell who made it. envtest
	// already configures service-account signing (issuer and keys), which
	// the TokenRequest API needs.
	args := l.env.ControlPlane.GetAPIServer().Configure()
	args.Set("service-cluster-ip-range", "10.96.0.0/16,fd00:10:96::/112")
	args.Set("audit-policy-file", policy)
	args.Set("audit-log-path", l.audit)
	if l.cfg, err = l.env.Start(); err != nil {
		os.RemoveAll(l.dir)
		return nil, fmt.Errorf("start the control plane: %w", err)
	}
	l.client = kubernetes.NewForConfigOrDie(l.cfg)
	steps := []func(context.Context) error{l.applyRBAC, l.writeControllerKubeconfig, l.build, l.startController}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			_ = l.Close()
			return nil, err
		}
	}
	if bin := kvBin; bin == "" {
		l.kvReason = "KUBE_VIP_BINARY is not set: kube-vip is not run, so advertising is not checked (the README says how to build it)"
	} else {
		kubeconfig := func(server string) (string, error) {
			path := filepath.Join(l.dir, "kube-vip.kubeconfig")
			return path, l.writeTokenKubeconfig(ctx, kubeVIPSA, server, path)
		}
		if l.kubeVIP, err = startKubeVIP(bin, l.cfg.Host, l.dir, kubeconfig); err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("start kube-vip from KUBE_VIP_BINARY=%s: %w", bin, err)
		}
	}
	return l, nil
}

// applyRBAC server-side applies the manifest's ServiceAccount and RBAC
// (not the StatefulSet: the controller runs as a process here), and
// kube-vip's from kind/kube-vip.yaml (not its DaemonSet).
func (l *Local) applyRBAC(ctx context.Context) error {
	objs, err := manifest.Objects(manifest.CloudController)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(l.root, "kind", "kube-vip.yaml"))
	if err != nil {
		return err
	}
	kv, err := manifest.Objects(raw)
	if err != nil {
		return fmt.Errorf("kind/kube-vip.yaml: %w", err)
	}
	objs = slices.DeleteFunc(append(objs, kv...), func(u *unstructured.Unstructured) bool {
		return u.GetKind() == "StatefulSet" || u.GetKind() == "DaemonSet"
	})
	return manifest.Apply(ctx, l.cfg, objs, metav1.PatchOptions{FieldManager: "e2e"})
}

// writeTokenKubeconfig writes a kubeconfig for server that authenticates
// as the ServiceAccount kube-system/sa, with a token from the TokenRequest
// API, and nothing else.
func (l *Local) writeTokenKubeconfig(ctx context.Context, sa, server, path string) error {
	exp := int64(24 * 3600)
	tr, err := l.client.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("mint a token for ServiceAccount kube-system/%s: %w", sa, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: l.cfg.CAData}
	kc.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: sa}
	kc.CurrentContext = "local"
	return clientcmd.WriteToFile(*kc, path)
}

func (l *Local) writeControllerKubeconfig(ctx context.Context) error {
	l.kubeconfig = filepath.Join(l.dir, "controller.kubeconfig")
	return l.writeTokenKubeconfig(ctx, controllerSA, l.cfg.Host, l.kubeconfig)
}

// build compiles the controller binary from this repository.
func (l *Local) build(context.Context) error {
	l.bin = filepath.Join(l.dir, "kube-vip-cloud-provider")
	cmd := exec.Command("go", "build", "-o", l.bin, "./cmd/kube-vip-cloud-provider")
	cmd.Dir = l.root
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

// dieWithParent makes a child process get SIGKILL if the test process dies
// without tearing down (a panic, go test's -timeout).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func (l *Local) startController(context.Context) error {
	var err error
	if l.log == nil {
		if l.log, err = os.Create(filepath.Join(l.dir, "controller.log")); err != nil {
			return err
		}
	}
	fmt.Fprintf(l.log, "==== e2e: controller started at %s\n", time.Now().Format(time.RFC3339Nano))
	// Run as a user would: only the kubeconfig, the real defaults
	// (leader election on), shorter leases so a restart is quick.
	l.cmd = exec.Command(l.bin, "--kubeconfig="+l.kubeconfig, "--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms")
	l.cmd.Env = append(os.Environ(), "KUBECONFIG=")
	l.cmd.Stdout, l.cmd.Stderr = l.log, l.log
	dieWithParent(l.cmd)
	if err := l.cmd.Start(); err != nil {
		return err
	}
	exited, cmd := make(chan struct{}), l.cmd
	l.exited = exited
	go func() {
		l.exitErr = cmd.Wait()
		close(exited)
	}()
	return nil
}

func (l *Local) stopController() error {
	if l.cmd == nil {
		return nil
	}
	defer func() { l.cmd = nil }()
	select {
	case <-l.exited:
		return fmt.Errorf("the controller had already exited: %v", l.exitErr)
	default:
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
		return nil
	case <-time.After(20 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.exited
		return errors.New("the controller did not stop within 20s of SIGTERM (killed)")
	}
}

// Name implements Cluster.
func (l *Local) Name() string { return "local" }

// Client implements Cluster.
func (l *Local) Client() kubernetes.Interface { return l.client }

// Pools implements Cluster: documentation ranges; the local API server has
// a dual-stack Service range. The IPv4 pool shares kv0's /24 (kubevip.go),
// so the peer namespace reaches its addresses on-link.
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

// RestartController implements Cluster: SIGTERM, then a new process,
// which returns once it holds the leader Lease.
func (l *Local) RestartController(ctx context.Context) error {
	old, err := l.leader(ctx)
	if err != nil {
		return err
	}
	if err := l.stopController(); err != nil {
		return err
	}
	if err := l.startController(ctx); err != nil {
		return err
	}
	var now string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		now, err = l.leader(ctx)
		return err == nil && now != "" && now != old, nil
	})
	if err != nil {
		return fmt.Errorf("the restarted controller did not take the Lease within 30s (holder %q, before the restart %q)", now, old)
	}
	return nil
}

// leader is the holder of the controller's leader Lease.
func (l *Local) leader(ctx context.Context) (string, error) {
	lease, err := l.client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-vip-cloud-controller", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("the controller's leader Lease: %w", err)
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
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

// Requests implements Auditor.
func (l *Local) Requests() ([]AuditEvent, error) { return readAudit(l.audit) }

// Diagnostics implements Cluster: the end of the controller's and
// kube-vip's logs.
func (l *Local) Diagnostics() string {
	var b strings.Builder
	if l.exited != nil {
		select {
		case <-l.exited:
			fmt.Fprintf(&b, "the controller process exited: %v\n", l.exitErr)
		default:
		}
	}
	b.WriteString("controller log:\n" + tail(filepath.Join(l.dir, "controller.log"), 20000))
	if l.kubeVIP != nil {
		b.WriteString("\nkube-vip log:\n" + tail(filepath.Join(l.dir, "kube-vip.log"), 20000))
	}
	return b.String()
}

func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	s := string(raw)
	if len(s) > n {
		s = "...\n" + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// Close implements Cluster: kube-vip first (it withdraws its addresses
// while the API server is still there), the controller, the control plane.
func (l *Local) Close() error {
	var errs []error
	if l.kubeVIP != nil {
		errs = append(errs, l.kubeVIP.stop())
		l.kubeVIP = nil
	}
	errs = append(errs, l.stopController())
	if l.log != nil {
		l.log.Close()
		l.log = nil
	}
	if l.cfg != nil {
		errs = append(errs, l.env.Stop())
		l.cfg = nil
	}
	if l.dir != "" {
		os.RemoveAll(l.dir)
		l.dir = ""
	}
	return errors.Join(errs...)
}
