package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

// lockedBuffer is a process's log, read while the process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runBinary starts bin with args until the test ends (killed then, its
// log shown if the test failed) and returns its log and the channel its
// exit arrives on (put the error back after reading it), and the process.
func runBinary(t *testing.T, bin, name string, args []string) (*lockedBuffer, chan error, *exec.Cmd) {
	t.Helper()
	log := &lockedBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s log:\n%s", name, log.String())
		}
	})
	return log, exited, cmd
}

// activeBinary runs the binary without leader election, metrics or health
// endpoints (so that several run side by side, all active) until the test
// ends, and waits until its workers have started.
func activeBinary(t *testing.T, bin, kubeconfig, name string, extra ...string) *lockedBuffer {
	t.Helper()
	log, exited, _ := runBinary(t, bin, name, append([]string{"--kubeconfig=" + kubeconfig, "--leader-elect=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0"}, extra...))
	eventually(t, 60*time.Second, name+" started", func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited: %v\n%s", name, err, log.String())
		default:
		}
		return strings.Contains(log.String(), "Started workers"), "no \"Started workers\" in its log yet"
	})
	return log
}

// claimsEnv is a control plane with room for a thousand and more Services
// (a /16 service CIDR), kube-system and the kubevip ConfigMap with pool.
func claimsEnv(t *testing.T, pool string, apiServerFlags map[string]string) (kubernetes.Interface, string) {
	t.Helper()
	flags := map[string]string{"service-cluster-ip-range": "10.96.0.0/16"}
	for k, v := range apiServerFlags {
		flags[k] = v
	}
	cfg, kubeconfig := testenv.StartWith(t, flags)
	cfg.QPS, cfg.Burst = 1000, 2000
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubevip", Namespace: "kube-system"},
		Data:       map[string]string{"cidr-global": pool},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return client, kubeconfig
}

// burst creates the LoadBalancer Services s000..s<n-1> in a new namespace
// ns at once (32 clients in parallel), then waits until every one carries
// an address.
func burst(t *testing.T, client kubernetes.Interface, ns string, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	no := false
	errs := make(chan error, n)
	testenv.Each(n, 32, func(i int) {
		_, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%03d", i)},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
				Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		if err != nil {
			errs <- err
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	eventually(t, 120*time.Second, fmt.Sprintf("an address for each of the %d Services of %s", n, ns), func() (bool, string) {
		list, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		got := 0
		for _, s := range list.Items {
			if s.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
				got++
			}
		}
		return got == n, fmt.Sprintf("%d of %d", got, n)
	})
}

// holders returns, for every address a Service of the cluster carries in
// its annotation, the Services ("namespace/name") that carry it.
func holders(t *testing.T, client kubernetes.Interface) map[string][]string {
	t.Helper()
	list, err := client.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, s := range list.Items {
		for _, a := range strings.Split(s.Annotations[decide.AnnotationLoadBalancerIPs], ",") {
			if a != "" {
				out[a] = append(out[a], s.Namespace+"/"+s.Name)
			}
		}
	}
	return out
}

// doubles lists the addresses held by more than one Service, with their
// holders.
func doubles(h map[string][]string) []string {
	var out []string
	for a, hs := range h {
		if len(hs) > 1 {
			sort.Strings(hs)
			out = append(out, a+" held by "+strings.Join(hs, " and "))
		}
	}
	sort.Strings(out)
	return out
}

// The "done when": two copies of the binary, both active (no
// leader election), 400 Services created at once. With address claims
// (the default) every Service gets an address, no address is held by two
// Services, and every held address has an IPAddress labelled as ours whose
// parent is its holder.
func TestTwoActiveBinariesWithClaimsNeverDoubleAllocate(t *testing.T) {
	const n = 400
	client, kubeconfig := claimsEnv(t, "10.40.0.0/22", nil)
	bin := buildBinary(t)
	logs := []*lockedBuffer{activeBinary(t, bin, kubeconfig, "controller a"), activeBinary(t, bin, kubeconfig, "controller b")}
	for i, l := range logs {
		if !strings.Contains(l.String(), "Address claims are on") {
			t.Fatalf("controller %d does not say its address claims are on:\n%s", i, l.String())
		}
	}
	start := time.Now()
	burst(t, client, "burst", n)
	t.Logf("%d Services assigned by two active controllers in %v", n, time.Since(start).Round(time.Millisecond))

	held := holders(t, client)
	if d := doubles(held); len(d) > 0 {
		t.Fatalf("%d addresses held by two Services with claims on:\n%s", len(d), strings.Join(d, "\n"))
	}
	if len(held) != n {
		t.Fatalf("%d distinct addresses held, want %d", len(held), n)
	}
	ips, err := client.NetworkingV1().IPAddresses().List(context.Background(), metav1.ListOptions{
		LabelSelector: networkingv1.LabelManagedBy + "=" + engine.ManagedBy})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]*networkingv1.ParentReference{}
	for _, ip := range ips.Items {
		claims[ip.Name] = ip.Spec.ParentRef
	}
	var bad []string
	for a, hs := range held {
		p, ok := claims[a]
		switch {
		case !ok:
			bad = append(bad, a+": no claim labelled "+engine.ManagedBy)
		case p == nil || p.Group != "" || p.Resource != "services" || p.Namespace+"/"+p.Name != hs[0]:
			bad = append(bad, fmt.Sprintf("%s: claim's parent %+v, want the Service %s", a, p, hs[0]))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("%d of %d held addresses without their holder's claim:\n%s", len(bad), len(held), strings.Join(bad, "\n"))
	}
	// Claims beyond the held addresses: made for a write that then lost
	// its race; the repair deletes them after the grace period.
	t.Logf("%d claims for %d held addresses", len(claims), len(held))
}

// The same with --address-claims=false can fail: two active binaries
// deciding from their own memory give one address to two Services (the
// issue measured 18 of 1,000). Up to three bursts are tried; none found
// fails the test, as the test above would then prove nothing.
func TestTwoActiveBinariesWithoutClaimsDoubleAllocate(t *testing.T) {
	const n = 400
	client, kubeconfig := claimsEnv(t, "10.40.0.0/20", nil)
	bin := buildBinary(t)
	for _, name := range []string{"controller a", "controller b"} {
		l := activeBinary(t, bin, kubeconfig, name, "--address-claims=false")
		if !strings.Contains(l.String(), "Address claims are off") {
			t.Fatalf("%s does not say its address claims are off:\n%s", name, l.String())
		}
	}
	var found []string
	for round := 1; round <= 3 && len(found) == 0; round++ {
		burst(t, client, fmt.Sprintf("burst-%d", round), n)
		found = doubles(holders(t, client))
		t.Logf("burst %d: %d addresses held by two Services", round, len(found))
	}
	if len(found) == 0 {
		t.Fatal("without claims, two active binaries never gave one address to two Services in 3 bursts of 400: " +
			"the test with claims on cannot show that claims prevent it")
	}
	t.Logf("for example: %s", found[0])
	ips, err := client.NetworkingV1().IPAddresses().List(context.Background(), metav1.ListOptions{
		LabelSelector: networkingv1.LabelManagedBy + "=" + engine.ManagedBy})
	if err != nil {
		t.Fatal(err)
	}
	if len(ips.Items) != 0 {
		t.Fatalf("--address-claims=false made %d claims", len(ips.Items))
	}
}
