package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The topology (see shared facts on running kube-vip locally): kube-vip in
// netns kv<id> on veth kv0, its peer cl0 in netns cl<id>; documentation
// addresses only, inside namespaces this test made.
const (
	kvAddr    = "198.51.100.250/24"
	clAddr    = "198.51.100.251/24"
	kvNode    = "e2e-node"
	kvTimeout = 15 * time.Second
)

// kubeVIP is a real kube-vip process in services/ARP mode.
type kubeVIP struct {
	kvNS, clNS string
	cmd        *exec.Cmd
	log        *os.File
	fwd        net.Listener
	wg         sync.WaitGroup
	pinger     []string
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// startKubeVIP creates the namespaces and runs kube-vip against the API
// server through a forwarder whose socket lives inside the kv namespace.
func startKubeVIP(ctx context.Context, bin, adminKubeconfig, dir string, cfg *rest.Config) (*kubeVIP, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("kube-vip needs root (CAP_NET_ADMIN) for network namespaces")
	}
	k := &kubeVIP{}
	switch {
	case lookPath("arping"):
		k.pinger = []string{"arping", "-c1", "-w2", "-I", "cl0"}
	case lookPath("ping"):
		k.pinger = []string{"ping", "-c1", "-W2"}
	default:
		return nil, errors.New("neither arping nor ping is installed: apt-get install arping (or iputils-ping)")
	}
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	k.kvNS, k.clNS = "kvcp-kv"+id, "kvcp-cl"+id
	setup := [][]string{
		{"ip", "netns", "add", k.kvNS},
		{"ip", "netns", "add", k.clNS},
		{"ip", "-n", k.kvNS, "link", "add", "kv0", "type", "veth", "peer", "name", "cl0", "netns", k.clNS},
		{"ip", "-n", k.kvNS, "addr", "add", kvAddr, "dev", "kv0"},
		{"ip", "-n", k.clNS, "addr", "add", clAddr, "dev", "cl0"},
		{"ip", "-n", k.kvNS, "link", "set", "lo", "up"},
		{"ip", "-n", k.kvNS, "link", "set", "kv0", "up"},
		{"ip", "-n", k.clNS, "link", "set", "lo", "up"},
		{"ip", "-n", k.clNS, "link", "set", "cl0", "up"},
	}
	for _, c := range setup {
		if err := run(c...); err != nil {
			k.deleteNamespaces()
			return nil, err
		}
	}
	apiserver, err := url.Parse(cfg.Host)
	if err != nil {
		k.deleteNamespaces()
		return nil, err
	}
	if k.fwd, err = listenIn(k.kvNS); err != nil {
		k.deleteNamespaces()
		return nil, fmt.Errorf("forwarder: %w", err)
	}
	k.wg.Add(1)
	go k.forward(apiserver.Host)
	// kube-vip's kubeconfig: the administrator's, pointed at the forwarder
	// (envtest's serving certificate covers 127.0.0.1).
	kc, err := clientcmd.LoadFromFile(adminKubeconfig)
	if err != nil {
		k.stop()
		return nil, err
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + k.fwd.Addr().String()
	}
	kcPath := filepath.Join(dir, "kube-vip.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kcPath); err != nil {
		k.stop()
		return nil, err
	}
	if k.log, err = os.Create(filepath.Join(dir, "kube-vip.log")); err != nil {
		k.stop()
		return nil, err
	}
	home := filepath.Join(dir, "kube-vip-home")
	_ = os.MkdirAll(home, 0o700)
	// env -i: a missing kubeconfig would silently fall back to in-cluster
	// config, and a stray ~/.kube/config would be picked up.
	k.cmd = exec.Command("ip", "netns", "exec", k.kvNS, "env", "-i", "PATH="+os.Getenv("PATH"), "HOME="+home,
		"vip_arp=true", "svc_enable=true", "vip_interface=kv0", "vip_nodename="+kvNode, "k8s_config_file="+kcPath,
		"vip_leaseduration=5", "vip_renewdeadline=3", "vip_retryperiod=1",
		bin, "manager", "--prometheusHTTPServer", "")
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	if err := k.cmd.Start(); err != nil {
		k.stop()
		return nil, err
	}
	return k, nil
}

func lookPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// listenIn opens a TCP listener inside netns ns: a socket keeps the
// namespace it was made in.
func listenIn(ns string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		ln, lerr := net.Listen("tcp", "127.0.0.1:0")
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// This thread stays in the wrong namespace: never unlock it, so
			// the runtime retires it with the goroutine.
			ch <- result{ln: ln, err: lerr}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ln: ln, err: lerr}
	}()
	r := <-ch
	return r.ln, r.err
}

// forward copies connections from the listener in kv to the API server.
func (k *kubeVIP) forward(target string) {
	defer k.wg.Done()
	for {
		c, err := k.fwd.Accept()
		if err != nil {
			return
		}
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			defer c.Close()
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

// endpoints creates the EndpointSlice kube-vip waits for before it
// announces (envtest runs no EndpointSlice controller).
func (k *kubeVIP) endpoints(ctx context.Context, c kubernetes.Interface, svc *corev1.Service) error {
	ready, node := true, kvNode
	port, proto := int32(80), corev1.ProtocolTCP
	if len(svc.Spec.Ports) > 0 {
		port, proto = svc.Spec.Ports[0].Port, svc.Spec.Ports[0].Protocol
	}
	addr, _, _ := strings.Cut(kvAddr, "/")
	_, err := c.DiscoveryV1().EndpointSlices(svc.Namespace).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc.Name + "-e2e", Namespace: svc.Namespace, Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &ready}, NodeName: &node}},
		Ports:       []discoveryv1.EndpointPort{{Port: &port, Protocol: &proto}},
	}, metav1.CreateOptions{})
	return err
}

func (k *kubeVIP) onInterface(addr netip.Addr) bool {
	out, err := exec.Command("ip", "-n", k.kvNS, "-br", "addr", "show", "dev", "kv0").CombinedOutput()
	return err == nil && strings.Contains(" "+string(out)+" ", " "+addr.String()+"/")
}

// WaitAdvertised implements Advertiser: the address is on kv0 and answers
// from the peer namespace.
func (k *kubeVIP) WaitAdvertised(ctx context.Context, _ *corev1.Service, addr netip.Addr) error {
	deadline := time.Now().Add(kvTimeout)
	for !k.onInterface(addr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear on kv0 within %v", addr, kvTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	args := append([]string{"ip", "netns", "exec", k.clNS}, k.pinger...)
	args = append(args, addr.String())
	var err error
	for ; time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = run(args...); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s is on kv0 but does not answer from the peer namespace: %w", addr, err)
}

// WaitWithdrawn implements Advertiser.
func (k *kubeVIP) WaitWithdrawn(ctx context.Context, addr netip.Addr) error {
	deadline := time.Now().Add(kvTimeout)
	for k.onInterface(addr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still on kv0 after %v", addr, kvTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func (k *kubeVIP) deleteNamespaces() {
	for _, ns := range []string{k.kvNS, k.clNS} {
		if ns != "" {
			_ = run("ip", "netns", "del", ns)
		}
	}
}

// stop ends kube-vip gracefully (it removes its addresses and releases its
// lease), then the forwarder, then the namespaces.
func (k *kubeVIP) stop() error {
	var err error
	if k.cmd != nil && k.cmd.Process != nil {
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- k.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = k.cmd.Process.Kill()
			<-done
			err = errors.New("kube-vip did not stop within 10s of SIGTERM")
		}
	}
	if k.fwd != nil {
		k.fwd.Close()
	}
	if k.log != nil {
		k.log.Close()
	}
	k.deleteNamespaces()
	return err
}
