package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

// startEnv starts a control plane and returns a client and a kubeconfig file.
func startEnv(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	cfg, kubeconfig := testenv.Start(t)
	return kubernetes.NewForConfigOrDie(cfg), kubeconfig
}

// built is the controller binary, built once per test run (each go build
// costs seconds, tens of them on a loaded machine); TestMain removes it.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// buildBinary builds the controller binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "kvcp-bin")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "kube-vip-cloud-provider")
		if out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type replica struct {
	id     string
	cmd    *exec.Cmd
	health string
	log    *strings.Builder
}

func startReplica(t *testing.T, bin, kubeconfig, id string) *replica {
	t.Helper()
	r := &replica{id: id, health: freePort(t), log: &strings.Builder{}}
	r.cmd = exec.Command(bin, "--kubeconfig="+kubeconfig, "--leader-elect-identity="+id,
		"--leader-elect-lease-duration=3s", "--leader-elect-renew-deadline=2s", "--leader-elect-retry-period=500ms",
		"--metrics-bind-address="+freePort(t), "--health-probe-bind-address="+r.health)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		_, _ = r.cmd.Process.Wait()
		if t.Failed() {
			t.Logf("replica %s log:\n%s", id, r.log.String())
		}
	})
	return r
}

func (r *replica) get(path string) (int, string) {
	resp, err := http.Get("http://" + r.health + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLeaderElectionTakeOverAfterKill(t *testing.T) {
	client, kubeconfig := startEnv(t)
	bin := buildBinary(t)
	ctx := context.Background()
	testenv.ConfigMap(t, client, map[string]string{"cidr-global": "192.0.2.0/28"})
	replicas := map[string]*replica{}
	for _, id := range []string{"a", "b"} {
		replicas[id] = startReplica(t, bin, kubeconfig, id)
	}
	var leader string
	eventually(t, 20*time.Second, "a leader", func() (bool, string) {
		l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-vip-cloud-controller", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, fmt.Sprint(err)
		}
		leader = *l.Spec.HolderIdentity
		return true, ""
	})
	for id, r := range replicas {
		eventually(t, 10*time.Second, "replica "+id+" ready", func() (bool, string) {
			code, body := r.get("/readyz")
			return code == http.StatusOK, body
		})
		if code, _ := r.get("/healthz"); code != http.StatusOK {
			t.Errorf("replica %s /healthz = %d", id, code)
		}
	}
	no := false
	mk := func(name string) {
		_, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
				Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	addr := func(name string) string {
		var a string
		eventually(t, 30*time.Second, "address of "+name, func() (bool, string) {
			s, err := client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			a = s.Annotations[decide.AnnotationLoadBalancerIPs]
			return a != "", "none yet"
		})
		return a
	}
	mk("before")
	first := addr("before")

	// Kill the leader without letting it release the Lease.
	if err := replicas[leader].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = replicas[leader].cmd.Process.Wait()
	mk("after")
	second := addr("after")
	if first == second {
		t.Fatalf("both Services got %s", first)
	}
	l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-vip-cloud-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == leader {
		t.Fatalf("the Lease is still held by the killed replica %q", leader)
	}
}

func TestGracefulShutdownReleasesLease(t *testing.T) {
	client, kubeconfig := startEnv(t)
	bin := buildBinary(t)
	r := startReplica(t, bin, kubeconfig, "solo")
	ctx := context.Background()
	eventually(t, 20*time.Second, "leadership", func() (bool, string) {
		l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-vip-cloud-controller", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, fmt.Sprint(err)
		}
		return *l.Spec.HolderIdentity == "solo", *l.Spec.HolderIdentity
	})
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, r.log.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after SIGTERM")
	}
	l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-vip-cloud-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == "solo" {
		t.Fatalf("the Lease is still held after a graceful shutdown")
	}
}
