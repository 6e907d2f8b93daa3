package e2e

import (
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
	"slices"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The topology (KUBE-VIP-LOCAL facts): kube-vip in netns kvcp-kv<pid> on
// the veth kv0, its peer cl0 in netns kvcp-cl<pid>. Documentation
// addresses only, and only inside namespaces the suite made.
var (
	kvAddr4 = netip.MustParsePrefix("198.51.100.250/24")
	clAddr4 = netip.MustParsePrefix("198.51.100.251/24")
	kvAddr6 = netip.MustParsePrefix("2001:db8:e2e::1:2/64")
	clAddr6 = netip.MustParsePrefix("2001:db8:e2e::1:1/64")
)

const (
	kvNode = "e2e-node"
	// kvTimeout bounds how long kube-vip may take to advertise or
	// withdraw: it polls once a second for an address that comes later.
	kvTimeout = 15 * time.Second
)

// kubeVIP is a real kube-vip process in services/ARP mode.
type kubeVIP struct {
	kvNS, clNS string
	kvMAC      net.HardwareAddr
	cmd        *exec.Cmd
	exited     chan struct{}
	log        *os.File
	fwd        net.Listener
	wg         sync.WaitGroup
}

// startKubeVIP creates the namespaces and runs kube-vip against the API
// server at apiserver (a URL) through a forwarder whose socket lives inside
// the kv namespace. kubeconfig writes kube-vip's kubeconfig for a server
// URL and returns its path.
func startKubeVIP(bin, apiserver, dir string, kubeconfig func(server string) (string, error)) (*kubeVIP, error) {
	// Root, the commands and bin were checked by hostcheck before the
	// control plane started.
	sweepStaleNetns()
	k := &kubeVIP{}
	id := fmt.Sprint(os.Getpid())
	k.kvNS, k.clNS = netnsPrefix+"kv"+id, netnsPrefix+"cl"+id
	fail := func(err error) (*kubeVIP, error) { _ = k.stop(); return nil, err }
	for _, c := range [][]string{
		{"ip", "netns", "add", k.kvNS},
		{"ip", "netns", "add", k.clNS},
		{"ip", "-n", k.kvNS, "link", "add", "kv0", "type", "veth", "peer", "name", "cl0", "netns", k.clNS},
		{"ip", "-n", k.kvNS, "addr", "add", kvAddr4.String(), "dev", "kv0"},
		{"ip", "-n", k.clNS, "addr", "add", clAddr4.String(), "dev", "cl0"},
		{"ip", "-n", k.kvNS, "addr", "add", kvAddr6.String(), "dev", "kv0", "nodad"},
		{"ip", "-n", k.clNS, "addr", "add", clAddr6.String(), "dev", "cl0", "nodad"},
		{"ip", "-n", k.kvNS, "link", "set", "lo", "up"},
		{"ip", "-n", k.kvNS, "link", "set", "kv0", "up"},
		{"ip", "-n", k.clNS, "link", "set", "lo", "up"},
		{"ip", "-n", k.clNS, "link", "set", "cl0", "up"},
	} {
		if err := run(c...); err != nil {
			return fail(err)
		}
	}
	var err error
	if k.kvMAC, err = macOf(k.kvNS, "kv0"); err != nil {
		return fail(err)
	}
	u, err := url.Parse(apiserver)
	if err != nil {
		return fail(err)
	}
	if k.fwd, err = listenIn(k.kvNS); err != nil {
		return fail(fmt.Errorf("forwarder: %w", err))
	}
	k.wg.Add(1)
	go k.forward(u.Host)
	// envtest's serving certificate covers 127.0.0.1.
	kcPath, err := kubeconfig("https://" + k.fwd.Addr().String())
	if err != nil {
		return fail(err)
	}
	if k.log, err = os.Create(filepath.Join(dir, "kube-vip.log")); err != nil {
		return fail(err)
	}
	home := filepath.Join(dir, "kube-vip-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fail(err)
	}
	// env -i: a kubeconfig path that does not exist would silently fall
	// back to in-cluster config, and a stray ~/.kube/config be picked up.
	k.cmd = exec.Command("ip", "netns", "exec", k.kvNS, "env", "-i", "PATH="+os.Getenv("PATH"), "HOME="+home,
		"vip_arp=true", "svc_enable=true", "vip_interface=kv0", "vip_nodename="+kvNode, "k8s_config_file="+kcPath,
		"vip_leaseduration=5", "vip_renewdeadline=3", "vip_retryperiod=1",
		bin, "manager", "--prometheusHTTPServer", "")
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	dieWithParent(k.cmd)
	if err := k.cmd.Start(); err != nil {
		return fail(err)
	}
	k.exited = make(chan struct{})
	go func() { _ = k.cmd.Wait(); close(k.exited) }()
	// It is up once it holds its services lease; stop early if it exits.
	select {
	case <-k.exited:
		return fail(fmt.Errorf("kube-vip exited at once; its log:\n%s", tail(k.log.Name(), 4000)))
	case <-time.After(500 * time.Millisecond):
	}
	return k, nil
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

// endpoints creates the EndpointSlices kube-vip waits for before it
// announces (envtest runs no EndpointSlice controller): one endpoint on
// this node for each of the Service's families.
func (k *kubeVIP) endpoints(ctx context.Context, c kubernetes.Interface, svc *corev1.Service) error {
	ready, node := true, kvNode
	port, proto := int32(80), corev1.ProtocolTCP
	if len(svc.Spec.Ports) > 0 {
		port, proto = svc.Spec.Ports[0].Port, svc.Spec.Ports[0].Protocol
	}
	families := svc.Spec.IPFamilies
	if len(families) == 0 {
		families = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	for _, f := range families {
		typ, addr, suffix := discoveryv1.AddressTypeIPv4, kvAddr4.Addr(), "-e2e-v4"
		if f == corev1.IPv6Protocol {
			typ, addr, suffix = discoveryv1.AddressTypeIPv6, kvAddr6.Addr(), "-e2e-v6"
		}
		_, err := c.DiscoveryV1().EndpointSlices(svc.Namespace).Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: svc.Name + suffix, Namespace: svc.Namespace,
				Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
			AddressType: typ,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{addr.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &ready}, NodeName: &node}},
			Ports: []discoveryv1.EndpointPort{{Port: &port, Protocol: &proto}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
	}
	return nil
}

// Advertised implements Advertiser: addr is on kv0.
func (k *kubeVIP) Advertised(_ context.Context, addr netip.Addr) (bool, error) {
	addrs, err := addrsOf(k.kvNS, "kv0")
	return slices.Contains(addrs, addr), err
}

// answers checks addr from the peer namespace: for IPv4 an ARP request
// answered with kv0's MAC, then (both families) an ICMP echo.
func (k *kubeVIP) answers(addr netip.Addr) error {
	if addr.Is4() {
		mac, err := arpWhoHas(k.clNS, "cl0", clAddr4.Addr(), addr, 2*time.Second)
		if err != nil {
			return err
		}
		if mac.String() != k.kvMAC.String() {
			return fmt.Errorf("ARP for %s answered by %s, not kv0 (%s)", addr, mac, k.kvMAC)
		}
	}
	return pingFrom(k.clNS, addr, 2*time.Second)
}

// WaitAdvertised implements Advertiser: the address is on kv0 and answers
// from the peer namespace.
func (k *kubeVIP) WaitAdvertised(ctx context.Context, _ *corev1.Service, addr netip.Addr) error {
	deadline := time.Now().Add(kvTimeout)
	for {
		on, err := k.Advertised(ctx, addr)
		if on {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear on kv0 within %v (%v)", addr, kvTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var err error
	for ; time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = k.answers(addr); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s is on kv0 but does not answer from the peer namespace: %w", addr, err)
}

// WaitWithdrawn implements Advertiser: the address leaves kv0 and no
// longer answers ARP.
func (k *kubeVIP) WaitWithdrawn(ctx context.Context, addr netip.Addr) error {
	deadline := time.Now().Add(kvTimeout)
	for {
		on, err := k.Advertised(ctx, addr)
		if err == nil && !on {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still on kv0 after %v (%v)", addr, kvTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addr.Is4() {
		if mac, err := arpWhoHas(k.clNS, "cl0", clAddr4.Addr(), addr, 500*time.Millisecond); err == nil {
			return fmt.Errorf("%s left kv0 but %s still answers ARP for it", addr, mac)
		}
	}
	return nil
}

func (k *kubeVIP) deleteNamespaces() {
	for _, ns := range []string{k.kvNS, k.clNS} {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); ns != "" && err == nil {
			_ = run("ip", "netns", "del", ns)
		}
	}
}

// stop ends kube-vip gracefully (SIGTERM: it removes its addresses and
// releases its lease; SIGKILL would leave them), then the forwarder, then
// the namespaces.
func (k *kubeVIP) stop() error {
	var err error
	if k.cmd != nil && k.exited != nil {
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.exited:
		case <-time.After(10 * time.Second):
			_ = k.cmd.Process.Kill()
			<-k.exited
			err = errors.New("kube-vip did not stop within 10s of SIGTERM (killed)")
		}
		k.cmd = nil
	}
	if k.fwd != nil {
		k.fwd.Close()
		k.fwd = nil
	}
	if k.log != nil {
		k.log.Close()
		k.log = nil
	}
	k.deleteNamespaces()
	return err
}
