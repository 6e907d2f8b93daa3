package e2e

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

var keep = flag.Bool("keep", false, "keep the kind cluster after the run")

// cluster is the one cluster every spec of this run uses.
var cluster Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	ctx := context.Background()
	var err error
	switch p := os.Getenv("E2E_PROVIDER"); p {
	case "", "local":
		cluster, err = NewLocal(ctx)
	case "kind":
		cluster, err = NewKind(ctx, *keep)
	default:
		err = fmt.Errorf("E2E_PROVIDER=%q: must be local or kind", p)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: bring the cluster up:", err)
		os.Exit(1)
	}
	// Ctrl-C or SIGTERM still tears the cluster down (namespaces, processes,
	// the kind cluster).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "e2e: interrupted, tearing down")
		_ = cluster.Close()
		os.Exit(130)
	}()
	fmt.Printf("e2e: running on the %s cluster\n", cluster.Name())
	if _, why := cluster.Advertiser(); why != "" {
		fmt.Printf("e2e: advertising specs will be SKIPPED: %s\n", why)
	}
	code := m.Run()
	if l, ok := cluster.(*Local); ok && code != 0 {
		fmt.Fprintf(os.Stderr, "controller log:\n%s\n", l.ControllerLog())
	}
	if err := cluster.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "tear down:", err)
	}
	os.Exit(code)
}

// spec is one spec's namespace and its slice of the cluster's pool.
type spec struct {
	t  *testing.T
	g  *WithT
	ns string
}

var specSeq struct {
	sync.Mutex
	n int
}

// newSpec makes a namespace whose Services draw from pool.
func newSpec(t *testing.T, pools map[string]string) *spec {
	specSeq.Lock()
	specSeq.n++
	n := specSeq.n
	specSeq.Unlock()
	s := &spec{t: t, g: NewWithT(t), ns: fmt.Sprintf("e2e-%d", n)}
	ctx := context.Background()
	_, err := cluster.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{})
	s.g.Expect(err).NotTo(HaveOccurred())
	s.config(pools)
	t.Cleanup(func() {
		list, err := cluster.Client().CoreV1().Services(s.ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, svc := range list.Items {
				_ = cluster.Client().CoreV1().Services(s.ns).Delete(ctx, svc.Name, metav1.DeleteOptions{})
			}
		}
	})
	return s
}

// config sets the ConfigMap: cidr-<ns> from pools, plus any other key.
func (s *spec) config(pools map[string]string) {
	v4, v6 := cluster.Pools()
	data := map[string]string{"cidr-global": v4}
	if v6 != "" {
		data["cidr-global"] = v4 + "," + v6
	}
	for k, v := range pools {
		data[strings.ReplaceAll(k, "NS", s.ns)] = v
	}
	s.g.Expect(cluster.SetConfig(context.Background(), data)).To(Succeed())
}

// createBare creates a Service without preparing it (no endpoints).
func (s *spec) createBare(name string) {
	no := false
	_, err := cluster.Client().CoreV1().Services(s.ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	s.g.Expect(err).NotTo(HaveOccurred())
}

func (s *spec) create(name string, mod ...func(*corev1.Service)) *corev1.Service {
	no := false
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
			Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	for _, m := range mod {
		m(svc)
	}
	ctx := context.Background()
	s.g.Expect(cluster.Prepare(ctx, svc)).To(Succeed())
	out, err := cluster.Client().CoreV1().Services(s.ns).Create(ctx, svc, metav1.CreateOptions{})
	s.g.Expect(err).NotTo(HaveOccurred())
	return out
}

// address waits for the Service's address annotation.
func (s *spec) address(name string) string {
	var got string
	s.g.Eventually(func() string {
		svc, err := cluster.Client().CoreV1().Services(s.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		got = svc.Annotations[decide.AnnotationLoadBalancerIPs]
		return got
	}, 30*time.Second, 50*time.Millisecond).ShouldNot(BeEmpty(), "Service %s/%s never got an address", s.ns, name)
	return got
}

func (s *spec) advertised(name, addr string) {
	s.t.Run("advertised by kube-vip", func(t *testing.T) {
		adv, why := cluster.Advertiser()
		if adv == nil {
			t.Skip(why)
		}
		svc, err := cluster.Client().CoreV1().Services(s.ns).Get(context.Background(), name, metav1.GetOptions{})
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		NewWithT(t).Expect(adv.WaitAdvertised(context.Background(), svc, netip.MustParseAddr(addr))).To(Succeed())
	})
}

func TestAddressAssignedAndAdvertised(t *testing.T) {
	s := newSpec(t, map[string]string{"cidr-NS": sub(0, 29)})
	addr := s.address(s.create("web").Name)
	s.g.Expect(netip.MustParsePrefix(sub(0, 29)).Contains(netip.MustParseAddr(addr))).To(BeTrue(), "address %s outside the pool %s", addr, sub(0, 29))
	svc, err := cluster.Client().CoreV1().Services(s.ns).Get(context.Background(), "web", metav1.GetOptions{})
	s.g.Expect(err).NotTo(HaveOccurred())
	s.g.Expect(svc.Spec.LoadBalancerIP).To(Equal(addr))
	s.g.Expect(svc.Labels).To(HaveKeyWithValue("implementation", "kube-vip"))
	s.advertised("web", addr)
}

func TestAddressReleasedAndWithdrawnOnDelete(t *testing.T) {
	s := newSpec(t, map[string]string{"cidr-NS": sub(8, 30)})
	first := s.address(s.create("a").Name)
	s.advertised("a", first)
	s.g.Expect(cluster.Client().CoreV1().Services(s.ns).Delete(context.Background(), "a", metav1.DeleteOptions{})).To(Succeed())
	t.Run("withdrawn by kube-vip", func(t *testing.T) {
		adv, why := cluster.Advertiser()
		if adv == nil {
			t.Skip(why)
		}
		NewWithT(t).Expect(adv.WaitWithdrawn(context.Background(), netip.MustParseAddr(first))).To(Succeed())
	})
	// The freed address is the lowest again: the next Service gets it.
	s.g.Expect(s.address(s.create("b").Name)).To(Equal(first))
}

func TestPoolChange(t *testing.T) {
	s := newSpec(t, map[string]string{"cidr-NS": sub(12, 30)})
	before := s.address(s.create("before").Name)
	s.config(map[string]string{"cidr-NS": sub(16, 30)})
	after := s.address(s.create("after").Name)
	s.g.Expect(netip.MustParsePrefix(sub(16, 30)).Contains(netip.MustParseAddr(after))).To(BeTrue(), "after = %s, want it from the new pool", after)
	// The first Service keeps its address, outside the new pool, and is told.
	s.g.Consistently(func() string {
		svc, _ := cluster.Client().CoreV1().Services(s.ns).Get(context.Background(), "before", metav1.GetOptions{})
		return svc.Annotations[decide.AnnotationLoadBalancerIPs]
	}, 2*time.Second, 200*time.Millisecond).Should(Equal(before))
	s.g.Eventually(func() []string { return reasons(s.ns, "before") }, 20*time.Second).Should(ContainElement(decide.ReasonAddressOutsidePool))
}

func reasons(ns, name string) []string {
	list, err := cluster.Client().CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	return out
}

func TestDualStack(t *testing.T) {
	_, v6 := cluster.Pools()
	if v6 == "" {
		t.Skip("this cluster has no IPv6 Service range")
	}
	s := newSpec(t, map[string]string{"cidr-NS": sub(20, 30) + "," + v6})
	policy := corev1.IPFamilyPolicyRequireDualStack
	addr := s.address(s.create("dual", func(svc *corev1.Service) {
		svc.Spec.IPFamilyPolicy = &policy
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	}).Name)
	parts := strings.Split(addr, ",")
	s.g.Expect(parts).To(HaveLen(2), "dual-stack address %q", addr)
	s.g.Expect(netip.MustParseAddr(parts[0]).Is4()).To(BeTrue())
	s.g.Expect(netip.MustParseAddr(parts[1]).Is6()).To(BeTrue())
}

func TestControllerRestartChangesNoAddress(t *testing.T) {
	s := newSpec(t, map[string]string{"cidr-NS": sub(24, 29)})
	before := map[string]string{}
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("s%d", i)
		before[name] = s.address(s.create(name).Name)
	}
	s.g.Expect(cluster.RestartController(context.Background())).To(Succeed())
	after := s.address(s.create("new").Name)
	for name, a := range before {
		s.g.Expect(after).NotTo(Equal(a), "the new Service got %s's address", name)
		svc, err := cluster.Client().CoreV1().Services(s.ns).Get(context.Background(), name, metav1.GetOptions{})
		s.g.Expect(err).NotTo(HaveOccurred())
		s.g.Expect(svc.Annotations[decide.AnnotationLoadBalancerIPs]).To(Equal(a), "%s changed address across the restart", name)
	}
}

func TestTwoHundredServicesAtOnceAllDistinct(t *testing.T) {
	const n = 200
	// A pool of its own; no EndpointSlices, so kube-vip announces none of them.
	s := newSpec(t, map[string]string{"cidr-NS": "203.0.113.0/24"})
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			s.createBare(fmt.Sprintf("s%03d", i))
		}(i)
	}
	wg.Wait()
	seen := map[string]string{}
	s.g.Eventually(func() int {
		list, err := cluster.Client().CoreV1().Services(s.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return 0
		}
		seen = map[string]string{}
		for _, svc := range list.Items {
			if a := svc.Annotations[decide.AnnotationLoadBalancerIPs]; a != "" {
				seen[svc.Name] = a
			}
		}
		return len(seen)
	}, 2*time.Minute, 200*time.Millisecond).Should(Equal(n))
	byAddr := map[string]string{}
	for name, a := range seen {
		other, dup := byAddr[a]
		s.g.Expect(dup).To(BeFalse(), "%s given to both %s and %s", a, other, name)
		byAddr[a] = name
	}
}

func TestControllerRunsWithTheManifestRBAC(t *testing.T) {
	if cluster.Name() != "local" {
		t.Skip("the local cluster runs the controller with a ServiceAccount token it can take rights from; on kind the pod is checked by the other specs")
	}
	ctx := context.Background()
	roles := cluster.Client().RbacV1().ClusterRoles()
	cr, err := roles.Get(ctx, "system:kube-vip-cloud-controller-role", metav1.GetOptions{})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	orig := cr.DeepCopy()
	// Take away the right to update Services: the controller must fail.
	var rules []rbacv1.PolicyRule
	for _, r := range cr.Rules {
		if len(r.Resources) == 1 && r.Resources[0] == "services" {
			r.Verbs = []string{"get", "list", "watch"}
		}
		rules = append(rules, r)
	}
	cr.Rules = rules
	_, err = roles.Update(ctx, cr, metav1.UpdateOptions{})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	restore := func() {
		cur, err := roles.Get(ctx, orig.Name, metav1.GetOptions{})
		if err == nil {
			cur.Rules = orig.Rules
			_, _ = roles.Update(ctx, cur, metav1.UpdateOptions{})
		}
	}
	t.Cleanup(restore)
	s := newSpec(t, map[string]string{"cidr-NS": sub(28, 30)})
	s.create("denied")
	s.g.Consistently(func() string {
		svc, _ := cluster.Client().CoreV1().Services(s.ns).Get(ctx, "denied", metav1.GetOptions{})
		return svc.Annotations[decide.AnnotationLoadBalancerIPs]
	}, 3*time.Second, 200*time.Millisecond).Should(BeEmpty(), "the controller wrote without the right to: it is not running as the ServiceAccount")
	restore()
	s.address("denied")
}

// sub returns the /bits sub-prefix at offset (in addresses) of the
// cluster's IPv4 pool.
func sub(offset, bits int) string {
	v4, _ := cluster.Pools()
	p := netip.MustParsePrefix(v4)
	a := p.Addr()
	for i := 0; i < offset; i++ {
		a = a.Next()
	}
	return netip.PrefixFrom(a, bits).Masked().String()
}
