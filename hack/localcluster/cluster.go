package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
)

// QuickStart is the README's quick start after `make run`, which make run
// prints as it is: TestReadmeQuickStartIsWhatMakeRunPrints keeps the two
// equal, and the documentation's snippet test runs it on this cluster.
const QuickStart = `export KUBECONFIG=$PWD/.run/kubeconfig
kubectl create service loadbalancer hello --tcp=80:8080
kubectl get svc -A -o custom-columns='NAMESPACE:.metadata.namespace,NAME:.metadata.name,ADDRESS:.metadata.annotations.kube-vip\.io/loadbalancerIPs'
`

// options says what to start and where.
type options struct {
	dir          string // the run directory: kubeconfig, controller.log
	configMap    string // the ConfigMap manifest applied at start
	binDir       string // where kube-vip-cloud-provider is
	noController bool
	metricsAddr  string
	healthAddr   string
}

func defaultOptions() options {
	no := os.Getenv("NO_CONTROLLER")
	return options{
		dir:          ".run",
		configMap:    "manifest/example-configmap.yaml",
		binDir:       "bin",
		noController: no != "" && no != "0" && !strings.EqualFold(no, "false"),
		metricsAddr:  "127.0.0.1:8443",
		healthAddr:   "127.0.0.1:8081",
	}
}

// cluster is a started local cluster.
type cluster struct {
	env        *envtest.Environment
	client     kubernetes.Interface
	kubeconfig string    // its path
	ctrl       *exec.Cmd // nil without the controller
	ctrlDone   chan error
	cancel     context.CancelFunc // stops the outcome printer
	printed    chan struct{}      // closed once the printer has stopped
}

// start starts the control plane, writes the kubeconfig, applies the
// ConfigMap and starts the controller binary (neither with
// opts.noController: a cluster before a migration has no kubevip
// ConfigMap either), starts the printer of outcomes, and prints the banner
// to out.
func start(ctx context.Context, opts options, out io.Writer) (c *cluster, err error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run `make run`, which installs the control plane")
	}
	binary := filepath.Join(opts.binDir, "kube-vip-cloud-provider")
	if !opts.noController {
		if _, err := os.Stat(binary); err != nil {
			return nil, fmt.Errorf("the controller binary: %w (make run builds it: go build -o bin/ ./cmd/...)", err)
		}
	}
	if err := os.MkdirAll(opts.dir, 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	ctrllog.SetLogger(klog.NewKlogr().V(4)) // envtest's own log: only with -v=4
	fmt.Fprintln(out, "Starting a local control plane (kube-apiserver and etcd)...")
	c = &cluster{env: &envtest.Environment{}, printed: make(chan struct{})}
	cfg, err := c.env.Start()
	if err != nil {
		return nil, fmt.Errorf("start the control plane: %w", err)
	}
	defer func() {
		if err != nil {
			_ = c.stop()
		}
	}()
	user, err := c.env.AddUser(envtest.User{Name: "developer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return c, fmt.Errorf("add a user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return c, fmt.Errorf("kubeconfig: %w", err)
	}
	c.kubeconfig = filepath.Join(opts.dir, "kubeconfig")
	if err := os.WriteFile(c.kubeconfig, kc, 0o600); err != nil {
		return c, fmt.Errorf("write the kubeconfig: %w", err)
	}
	if c.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return c, err
	}
	printCtx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	ready := make(chan struct{})
	go func() {
		defer close(c.printed)
		printOutcomes(printCtx, c.client, out, ready)
	}()
	<-ready // the watch is open: no Event of the start is missed
	if !opts.noController {
		if err := applyConfigMap(ctx, c.client, opts.configMap, out); err != nil {
			return c, err
		}
		logPath := filepath.Join(opts.dir, "controller.log")
		if err := c.startController(binary, logPath, opts); err != nil {
			return c, err
		}
		if err := c.waitReady(ctx, opts.healthAddr, logPath); err != nil {
			return c, err
		}
	}
	fmt.Fprint(out, banner(opts))
	return c, nil
}

// startController runs the controller binary on the cluster, without
// leader election, its output into logPath.
func (c *cluster) startController(binary, logPath string, opts options) error {
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("the controller's log: %w", err)
	}
	c.ctrl = exec.Command(binary,
		"--kubeconfig="+c.kubeconfig,
		"--leader-elect=false",
		"--config-map-namespace="+controller.DefaultConfigMapNamespace,
		"--metrics-bind-address="+opts.metricsAddr,
		"--health-probe-bind-address="+opts.healthAddr,
	)
	c.ctrl.Stdout, c.ctrl.Stderr = log, log
	// Its own process group: Ctrl-C reaches it only through stop, which
	// lets it drain its writes before the API server goes.
	c.ctrl.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.ctrl.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", binary, err)
	}
	c.ctrlDone = make(chan error, 1)
	go func() { c.ctrlDone <- c.ctrl.Wait(); log.Close() }()
	return nil
}

// waitReady waits until the controller's /readyz answers 200 (its caches
// synced, its workers started), so that what the reader creates next is
// seen by a running controller, up to a minute.
func (c *cluster) waitReady(ctx context.Context, healthAddr, logPath string) error {
	url := "http://" + healthAddr + "/readyz"
	deadline := time.Now().Add(time.Minute)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-c.ctrlDone:
			c.ctrlDone <- err // for stop
			return fmt.Errorf("the controller exited before it was ready (%v): see %s", err, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the controller is not ready after a minute (%s): see %s", url, logPath)
		}
	}
}

// stop stops the controller (SIGTERM, then SIGKILL after 10 s), the
// printer and the control plane.
func (c *cluster) stop() error {
	if c.ctrl != nil && c.ctrl.Process != nil {
		_ = c.ctrl.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.ctrlDone:
		case <-time.After(10 * time.Second):
			_ = c.ctrl.Process.Kill()
			<-c.ctrlDone
		}
	}
	if c.cancel != nil {
		c.cancel()
		<-c.printed
	}
	if err := c.env.Stop(); err != nil {
		return fmt.Errorf("stop the control plane: %w", err)
	}
	return nil
}

// banner says what the cluster is and is not, and what to type.
func banner(opts options) string {
	var b strings.Builder
	wd, _ := os.Getwd()
	fmt.Fprintf(&b, "\nThe cluster is up (run directory %s). What it is:\n", opts.dir)
	fmt.Fprintf(&b, "  - a kube-apiserver and etcd, nothing else: no nodes, no pods, no kube-vip (EXTERNAL-IP stays <pending>;\n")
	fmt.Fprintf(&b, "    the address is in the annotation kube-vip.io/loadbalancerIPs), IPv4 Services only (10.0.0.0/24);\n")
	if opts.noController {
		fmt.Fprintf(&b, "  - NO controller (NO_CONTROLLER is set) and no ConfigMap kubevip: rehearse a migration (docs/migration.md).\n")
	} else {
		fmt.Fprintf(&b, "  - the ConfigMap kube-system/kubevip from %s;\n", opts.configMap)
		fmt.Fprintf(&b, "  - the controller %s, without leader election (so no Lease kube-vip-cloud-controller),\n", filepath.Join(opts.binDir, "kube-vip-cloud-provider"))
		fmt.Fprintf(&b, "    its log in %s, /metrics on https://%s (make metrics).\n", filepath.Join(opts.dir, "controller.log"), opts.metricsAddr)
	}
	fmt.Fprintf(&b, "\nIn another terminal, from %s:\n\n", wd)
	lines := strings.Split(strings.TrimSuffix(quickStart(opts.dir), "\n"), "\n")
	if opts.noController {
		lines = lines[:1] // the export: nothing would assign hello an address
	}
	for _, line := range lines {
		fmt.Fprintf(&b, "    %s\n", line)
	}
	if opts.noController {
		fmt.Fprintf(&b, "\nthen the rehearsal of docs/migration.md.\n")
	}
	fmt.Fprintf(&b, "\nEach Service's outcome, as the controller's Events tell it (Ctrl-C stops everything):\n")
	return b.String()
}

// quickStart is QuickStart for a run directory other than .run.
func quickStart(dir string) string {
	if filepath.Clean(dir) == ".run" {
		return QuickStart
	}
	abs, _ := filepath.Abs(dir)
	return strings.Replace(QuickStart, "$PWD/.run", abs, 1)
}

func applyConfigMap(ctx context.Context, client kubernetes.Interface, path string, out io.Writer) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read the ConfigMap: %w", err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	if cm.Namespace == "" {
		cm.Namespace = controller.DefaultConfigMapNamespace
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cm.Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", cm.Namespace, err)
	}
	if _, err := client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, &cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ConfigMap %s/%s from %s: %w", cm.Namespace, cm.Name, path, err)
	}
	fmt.Fprintf(out, "Applied ConfigMap %s/%s from %s.\n", cm.Namespace, cm.Name, path)
	return nil
}
