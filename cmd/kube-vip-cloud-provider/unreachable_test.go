package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// stopDeadline is how soon after SIGTERM the binary must have exited when no
// write is in flight: 2 s, with a margin for a loaded test machine.
const stopDeadline = 3 * time.Second

// proxyMode is how the flaky proxy treats connections.
type proxyMode int

const (
	// forward passes connections through to the API server.
	forward proxyMode = iota
	// hold accepts connections and never answers: an API server that hangs.
	hold
	// refuse closes connections at once: an API server that is down.
	refuse
)

// flakyProxy is a TCP proxy in front of the API server whose mode the test
// switches; switching closes every connection it holds or forwards, and
// refuse closes its listener, so that connections are refused by the kernel.
type flakyProxy struct {
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener // nil while refusing
	mode  proxyMode
	conns []net.Conn
}

func startProxy(t *testing.T, target string, mode proxyMode) *flakyProxy {
	t.Helper()
	p := &flakyProxy{addr: freePort(t), target: target, mode: refuse}
	if err := p.set(mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.set(refuse) })
	return p
}

func (p *flakyProxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.handle(c)
	}
}

func (p *flakyProxy) handle(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.mode {
	case refuse:
		_ = c.Close()
	case hold:
		p.conns = append(p.conns, c)
	case forward:
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			return
		}
		p.conns = append(p.conns, c, up)
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}

// set switches the mode and drops every connection of the former one.
func (p *flakyProxy) set(m proxyMode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	switch {
	case m == refuse && p.ln != nil:
		_ = p.ln.Close()
		p.ln = nil
	case m != refuse && p.ln == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("listen again on %s: %w", p.addr, err)
		}
		p.ln = ln
		go p.accept(ln)
	}
	return nil
}

// to switches the proxy to mode m, failing the test if it cannot.
func (p *flakyProxy) to(t *testing.T, m proxyMode) {
	t.Helper()
	if err := p.set(m); err != nil {
		t.Fatal(err)
	}
}

// envBehindProxy starts a control plane behind a flaky proxy in mode m and
// returns a direct client and a kubeconfig through the proxy.
func envBehindProxy(t *testing.T, m proxyMode) (kubernetes.Interface, string, *flakyProxy) {
	t.Helper()
	client, kubeconfig := startEnv(t)
	kc, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var target string
	for _, c := range kc.Clusters {
		target = strings.TrimPrefix(c.Server, "https://")
	}
	p := startProxy(t, target, m)
	for _, c := range kc.Clusters {
		c.Server = "https://" + p.addr
	}
	path := filepath.Join(t.TempDir(), "proxied-kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return client, path, p
}

// startBinary starts the binary with args and a free health port.
func startBinary(t *testing.T, bin string, args ...string) *replica {
	t.Helper()
	r := &replica{id: "bin", health: freePort(t), log: &strings.Builder{}}
	r.cmd = exec.Command(bin, append([]string{"--metrics-bind-address=0", "--health-probe-bind-address=" + r.health}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &lockedWriter{w: r.log}, &lockedWriter{w: r.log}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		_, _ = r.cmd.Process.Wait()
		if t.Failed() {
			t.Logf("binary log:\n%s", r.logText())
		}
	})
	return r
}

// lockedWriter lets the binary's stdout and stderr share a builder that the
// test reads while the binary writes.
type lockedWriter struct{ w *strings.Builder }

var logMu sync.Mutex

func (l *lockedWriter) Write(b []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return l.w.Write(b)
}

func (r *replica) logText() string {
	logMu.Lock()
	defer logMu.Unlock()
	return r.log.String()
}

// terminate sends SIGTERM and returns how long the binary took to exit; it
// fails the test if it takes longer than stopDeadline or exits non-zero.
func (r *replica) terminate(t *testing.T) time.Duration {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		took := time.Since(start)
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
		return took
	case <-time.After(stopDeadline):
		t.Fatalf("still running %v after SIGTERM", stopDeadline)
	}
	return 0
}

// TestUnreachableAPIServerIsReportedAndSIGTERMIsQuick runs the binary
// against an API server that refuses connections, then one that accepts
// them and never answers: the failure is logged at the default verbosity
// with a growing interval, /readyz fails naming the server and the error,
// the binary starts once the API server answers, and SIGTERM ends it at once.
func TestUnreachableAPIServerIsReportedAndSIGTERMIsQuick(t *testing.T) {
	client, kubeconfig, proxy := envBehindProxy(t, refuse)
	bin := buildBinary(t)
	server := "https://" + proxy.addr

	t.Run("refused, then answering", func(t *testing.T) {
		r := startBinary(t, bin, "--kubeconfig="+kubeconfig, "--leader-elect-lease-duration=3s",
			"--leader-elect-renew-deadline=2s", "--leader-elect-retry-period=500ms")
		eventually(t, 20*time.Second, "/readyz naming the unreachable API server", func() (bool, string) {
			code, body := r.get("/readyz")
			return code == 503 && strings.Contains(body, "API server "+server) && strings.Contains(body, "connection refused"), body
		})
		// One line per failed attempt, 1 s, 2 s, 4 s apart: after the third
		// there are three, whatever client-go does underneath.
		eventually(t, 20*time.Second, "three logged failures", func() (bool, string) {
			return strings.Contains(r.logText(), "failures=3"), "fewer"
		})
		failed := regexp.MustCompile(`"Cannot reach the API server".*server="`+regexp.QuoteMeta(server)+`".*nextTryIn="(\w+)"`).FindAllStringSubmatch(r.logText(), -1)
		var intervals []string
		for _, m := range failed {
			intervals = append(intervals, m[1])
		}
		if len(intervals) < 3 || len(intervals) > 4 || intervals[0] != "1s" || intervals[1] != "2s" || intervals[2] != "4s" {
			t.Fatalf("failed attempts logged with intervals %v, want 1s 2s 4s (and at most one more)", intervals)
		}
		if strings.Contains(r.logText(), "Waiting for caches to sync") {
			t.Fatal("the controller started before the API server answered")
		}

		proxy.to(t, forward)
		eventually(t, 30*time.Second, "ready once the API server answers", func() (bool, string) {
			code, body := r.get("/readyz")
			return code == 200, body
		})
		if !strings.Contains(r.logText(), `"The API server answers again"`) {
			t.Error("the recovery is not logged")
		}
		// Ready means the API server answers; the lease is taken a moment
		// later, by the elector's first round.
		eventually(t, 30*time.Second, "a leader once the API server answers", func() (bool, string) {
			l, err := client.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-vip-cloud-controller", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", "lease without a holder"
		})
		// Started as a whole (discovery, caches, workers) before the API
		// server goes away again: this part is about SIGTERM, not about a
		// start cut short.
		eventually(t, 30*time.Second, "the workers started", func() (bool, string) {
			return strings.Contains(r.logText(), "Started workers"), "no \"Started workers\" in its log yet"
		})
		proxy.to(t, refuse)
		r.terminate(t)
	})

	t.Run("hanging", func(t *testing.T) {
		proxy.to(t, hold)
		r := startBinary(t, bin, "--kubeconfig="+kubeconfig, "--leader-elect=false")
		eventually(t, 20*time.Second, "/readyz naming the hanging API server", func() (bool, string) {
			code, body := r.get("/readyz")
			return code == 503 && strings.Contains(body, "API server "+server) && strings.Contains(body, "deadline exceeded"), body
		})
		r.terminate(t)
		if !strings.Contains(r.logText(), "Stopped before the API server answered") {
			t.Error("the early stop is not logged")
		}
	})
}

// TestSIGTERMWhenTheAPIServerGoesAway runs the binary until it has
// assigned an address, then takes the API server away and sends SIGTERM:
// the binary exits within the deadline although client-go's informers back
// off their failed watches and the Lease cannot be released.
func TestSIGTERMWhenTheAPIServerGoesAway(t *testing.T) {
	client, kubeconfig, proxy := envBehindProxy(t, forward)
	bin := buildBinary(t)
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}}, metav1.CreateOptions{}); err != nil {
		t.Logf("kube-system: %v", err)
	}
	if _, err := client.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubevip", Namespace: "kube-system"},
		Data:       map[string]string{"cidr-global": "192.0.2.0/28"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	no := false
	assigned := func(name string) {
		t.Helper()
		if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
				Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "an address for "+name, func() (bool, string) {
			s, err := client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return s.Annotations[decide.AnnotationLoadBalancerIPs] != "", "none yet"
		})
	}

	t.Run("alone, API server down while informers back off", func(t *testing.T) {
		proxy.to(t, forward)
		r := startBinary(t, bin, "--kubeconfig="+kubeconfig, "--leader-elect=false")
		assigned("alone")
		proxy.to(t, refuse)
		eventually(t, 20*time.Second, "/readyz failing", func() (bool, string) {
			code, body := r.get("/readyz")
			return code == 503 && strings.Contains(body, "connection refused"), body
		})
		// Let the informers' back-off grow past the deadline (0.8 s, 1.6 s,
		// 3.2 s, ...): client-go sleeps it out without watching for the stop.
		time.Sleep(5 * time.Second)
		r.terminate(t)
	})

	t.Run("leader, API server hanging", func(t *testing.T) {
		proxy.to(t, forward)
		// client-go releases the Lease with a timeout of the renew deadline
		// (10 s by default): the release must be cut shorter.
		r := startBinary(t, bin, "--kubeconfig="+kubeconfig, "--leader-elect-identity=hanging")
		assigned("leader")
		l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-vip-cloud-controller", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "hanging" {
			t.Fatalf("not the leader: %v %+v", err, l)
		}
		proxy.to(t, hold)
		time.Sleep(time.Second)
		r.terminate(t)
	})
}
