package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// binDir holds the binaries built from this checkout for the tests.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set: these tests start make run's control plane.\n"+
			"Run `make test`, which installs it, or export KUBEBUILDER_ASSETS=$(hack/envtest.sh | tail -n 1).")
		return 1
	}
	dir, err := os.MkdirTemp("", "localcluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", dir+"/", "../../cmd/kube-vip-cloud-provider", "../../cmd/kube-vip-sim", ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build the binaries: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

// syncBuffer is what the cluster prints to, read while it prints.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr is a loopback address nothing listens on just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testOptions are make run's options with a run directory of the test's
// own and ports nothing else uses.
func testOptions(t *testing.T, dir string) options {
	opts := defaultOptions()
	opts.dir = filepath.Join(dir, ".run")
	opts.configMap = "../../manifest/example-configmap.yaml"
	opts.binDir = binDir
	opts.noController = false
	opts.metricsAddr = freeAddr(t)
	opts.healthAddr = freeAddr(t)
	return opts
}

// startCluster starts make run's cluster for one test and stops it at the
// test's end.
func startCluster(t *testing.T, opts options) (*cluster, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := start(ctx, opts, out)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
		cancel()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(opts.dir, "controller.log"))
			t.Logf("make run printed:\n%s\ncontroller.log:\n%s", out, log)
		}
	})
	return c, out
}

func loadBalancer(name string, port int32, request string) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if request != "" {
		svc.Annotations = map[string]string{decide.AnnotationLoadBalancerIPs: request}
	}
	return svc
}

// waitFor waits until out holds every line of want, up to 30 s.
func waitFor(t *testing.T, out *syncBuffer, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := ""
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("make run never printed %q", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMakeRunPrintsRefusalsAsRefused: a Service given an address is
// printed ASSIGNED with it; a request that is not an address, or an
// address another Service holds with the same port, is printed REFUSED
// with the controller's reason, never ASSIGNED (issue 17 item 4: the
// printer read the annotation, which holds a refused request too).
func TestMakeRunPrintsRefusalsAsRefused(t *testing.T) {
	c, out := startCluster(t, testOptions(t, t.TempDir()))
	ctx := context.Background()
	waitFor(t, out, "Ctrl-C stops everything")
	if _, err := c.client.CoreV1().Services("default").Create(ctx, loadBalancer("hello", 80, ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "ASSIGNED default/hello 192.168.0.200\n")
	for _, svc := range []*corev1.Service{loadBalancer("bogus", 80, "bogus"), loadBalancer("taken", 80, "192.168.0.200")} {
		if _, err := c.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, out,
		"REFUSED default/bogus: AllocationFailed: InvalidRequest: ",
		"REFUSED default/taken: AllocationFailed: Conflict: ")
	for _, never := range []string{"ASSIGNED default/bogus", "ASSIGNED default/taken"} {
		if strings.Contains(out.String(), never) {
			t.Errorf("make run printed %q", never)
		}
	}
}

// TestNoControllerStartsTheClusterAlone: NO_CONTROLLER=1 make run starts
// no controller and no kubevip ConfigMap: a Service stays without an
// address, and the banner says why.
func TestNoControllerStartsTheClusterAlone(t *testing.T) {
	t.Setenv("NO_CONTROLLER", "1")
	opts := testOptions(t, t.TempDir())
	opts.noController = defaultOptions().noController
	c, out := startCluster(t, opts)
	if c.ctrl != nil {
		t.Fatal("NO_CONTROLLER=1 started the controller")
	}
	if !strings.Contains(out.String(), "NO controller (NO_CONTROLLER is set)") {
		t.Errorf("the banner does not say there is no controller:\n%s", out)
	}
	ctx := context.Background()
	if _, err := c.client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubevip", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("NO_CONTROLLER=1: get ConfigMap kube-system/kubevip: %v, want NotFound (a cluster before a migration has none)", err)
	}
	if _, err := c.client.CoreV1().Services("default").Create(ctx, loadBalancer("hello", 80, ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // what a controller would need, many times over
	svc, err := c.client.CoreV1().Services("default").Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := svc.Annotations[decide.AnnotationLoadBalancerIPs]; a != "" {
		t.Fatalf("without a controller hello got %q", a)
	}
}
