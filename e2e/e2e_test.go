package e2e

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

var keep = flag.Bool("keep", false, "keep the kind cluster after the run (E2E_PROVIDER=kind)")

// cl is the one cluster every spec of this run uses.
var cl Cluster

// teardown closes the cluster once, whoever asks first: the end of the
// run, Ctrl-C, or the approach of go test's -timeout.
var teardown = struct {
	sync.Mutex
	done        bool
	interrupted bool // before the cluster was up
}{}

func closeCluster() {
	teardown.Lock()
	defer teardown.Unlock()
	if teardown.done || cl == nil {
		teardown.done = true
		return
	}
	teardown.done = true
	if err := cl.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: tear down:", err)
	}
}

func TestMain(m *testing.M) {
	// Started by kind as docker (the docker shim, on a host that refuses
	// --privileged): be that, and nothing else.
	if IsDockerShim() {
		os.Exit(DockerShim(os.Args[1:]))
	}
	flag.Parse()
	// Ctrl-C or SIGTERM, even while the cluster comes up, still tears it
	// down (processes, network namespaces, the kind cluster).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "e2e: %v: tearing down\n", s)
		teardown.Lock()
		up := cl != nil
		teardown.Unlock()
		if up {
			closeCluster()
			os.Exit(130)
		}
		// Still coming up: TestMain tears down once New returns.
		teardown.Lock()
		teardown.interrupted = true
		teardown.Unlock()
	}()
	// go test's -timeout kills the process without any teardown: leave
	// before it.
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 {
			margin := min(d/10, time.Minute)
			time.AfterFunc(d-margin, func() {
				fmt.Fprintf(os.Stderr, "e2e: FAIL: the run is about to reach go test -timeout=%v: tearing down\n", d)
				teardown.Lock()
				c := cl
				teardown.Unlock()
				if c != nil {
					fmt.Fprintln(os.Stderr, c.Diagnostics())
				}
				closeCluster()
				os.Exit(1)
			})
		}
	}

	fmt.Printf("e2e: bringing up the %s cluster (E2E_PROVIDER=%s)\n", Provider(), os.Getenv("E2E_PROVIDER"))
	start := time.Now()
	c, err := New(context.Background(), Options{Keep: *keep})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: bring up the %s cluster: %v\n", Provider(), err)
		os.Exit(1)
	}
	teardown.Lock()
	cl = c
	interrupted := teardown.interrupted
	teardown.Unlock()
	if interrupted {
		closeCluster()
		os.Exit(130)
	}
	fmt.Printf("e2e: the %s cluster is up after %v\n", cl.Name(), time.Since(start).Round(time.Millisecond))
	if _, why := cl.Advertiser(); why != "" {
		fmt.Printf("e2e: the advertising specs will be SKIPPED: %s\n", why)
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, cl.Diagnostics())
	}
	closeCluster()
	os.Exit(code)
}

// spec is one spec's namespace, with its own pool.
type spec struct {
	t  *testing.T
	g  *WithT
	ns string
}

var specSeq struct {
	sync.Mutex
	n int
}

// newSpec makes a namespace whose Services draw from the pools (keys
// with NS for the namespace, e.g. "cidr-NS").
func newSpec(t *testing.T, pools map[string]string) *spec {
	specSeq.Lock()
	specSeq.n++
	n := specSeq.n
	specSeq.Unlock()
	s := &spec{t: t, g: NewWithT(t), ns: fmt.Sprintf("e2e-%d-%s", n, strings.ToLower(strings.TrimPrefix(t.Name(), "Test")))}
	if len(s.ns) > 63 {
		s.ns = s.ns[:63]
	}
	ctx := context.Background()
	_, err := cl.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{})
	s.g.Expect(err).NotTo(HaveOccurred())
	s.config(pools)
	t.Cleanup(func() {
		list, err := cl.Client().CoreV1().Services(s.ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, svc := range list.Items {
				_ = cl.Client().CoreV1().Services(s.ns).Delete(ctx, svc.Name, metav1.DeleteOptions{})
			}
		}
		_ = cl.Client().CoreV1().Namespaces().Delete(ctx, s.ns, metav1.DeleteOptions{})
	})
	return s
}

// config sets the ConfigMap's data to pools (NS in a key stands for the
// spec's namespace).
func (s *spec) config(pools map[string]string) {
	data := map[string]string{}
	for k, v := range pools {
		data[strings.ReplaceAll(k, "NS", s.ns)] = v
	}
	s.g.Expect(cl.SetConfig(context.Background(), data)).To(Succeed())
}

func noNodePorts(svc *corev1.Service) {
	no := false
	svc.Spec.AllocateLoadBalancerNodePorts = &no
}

// createBare creates a Service with nothing behind it: kube-vip does not
// announce it.
func (s *spec) createBare(name string) string {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	noNodePorts(svc)
	_, err := cl.Client().CoreV1().Services(s.ns).Create(context.Background(), svc, metav1.CreateOptions{})
	s.g.Expect(err).NotTo(HaveOccurred())
	return name
}

// create creates a Service with endpoints behind it (an echo Deployment
// on kind, EndpointSlices on the local cluster with kube-vip).
func (s *spec) create(name string, mod ...func(*corev1.Service)) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	noNodePorts(svc)
	for _, m := range mod {
		m(svc)
	}
	ctx := context.Background()
	s.g.Expect(cl.Prepare(ctx, svc)).To(Succeed())
	out, err := cl.Client().CoreV1().Services(s.ns).Create(ctx, svc, metav1.CreateOptions{})
	s.g.Expect(err).NotTo(HaveOccurred())
	return out
}

func (s *spec) get(name string) *corev1.Service {
	svc, err := cl.Client().CoreV1().Services(s.ns).Get(context.Background(), name, metav1.GetOptions{})
	s.g.Expect(err).NotTo(HaveOccurred())
	return svc
}

// annotation is the Service's kube-vip.io/loadbalancerIPs ("" if none).
func (s *spec) annotation(name string) string {
	svc, err := cl.Client().CoreV1().Services(s.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "error: " + err.Error()
	}
	return svc.Annotations[decide.AnnotationLoadBalancerIPs]
}

// address waits for the Service's address annotation and returns its
// addresses.
func (s *spec) address(name string) []netip.Addr {
	s.t.Helper()
	var got string
	s.g.Eventually(func() string {
		got = s.annotation(name)
		return got
	}, 30*time.Second, 50*time.Millisecond).ShouldNot(BeEmpty(), "Service %s/%s never got an address", s.ns, name)
	var out []netip.Addr
	for _, a := range strings.Split(got, ",") {
		addr, err := netip.ParseAddr(strings.TrimSpace(a))
		s.g.Expect(err).NotTo(HaveOccurred(), "annotation %q", got)
		out = append(out, addr)
	}
	return out
}

// address1 is address for a single-stack Service.
func (s *spec) address1(name string) netip.Addr {
	s.t.Helper()
	addrs := s.address(name)
	s.g.Expect(addrs).To(HaveLen(1))
	return addrs[0]
}

// advertised checks, in a subtest that is skipped (with the reason) when
// the cluster runs no kube-vip, that kube-vip advertises every address:
// it is reachable and in status.loadBalancer.ingress.
func (s *spec) advertised(name string, addrs ...netip.Addr) {
	s.t.Helper()
	s.t.Run("kube-vip advertises "+name, func(t *testing.T) {
		adv, why := cl.Advertiser()
		if adv == nil {
			t.Skip(why)
		}
		g := NewWithT(t)
		svc := s.get(name)
		for _, a := range addrs {
			start := time.Now()
			g.Expect(adv.WaitAdvertised(context.Background(), svc, a)).To(Succeed())
			t.Logf("%s advertised and answering %v after the check began", a, time.Since(start).Round(time.Millisecond))
		}
		g.Eventually(func() []string {
			var ips []string
			for _, in := range s.get(name).Status.LoadBalancer.Ingress {
				ips = append(ips, in.IP)
			}
			return ips
		}, 15*time.Second, 50*time.Millisecond).Should(ContainElements(strs(addrs)), "status.loadBalancer.ingress of %s/%s", s.ns, name)
	})
}

// withdrawn checks in a subtest (skipped without kube-vip) that kube-vip
// no longer advertises addr.
func (s *spec) withdrawn(addr netip.Addr) {
	s.t.Helper()
	s.t.Run("kube-vip withdraws "+addr.String(), func(t *testing.T) {
		adv, why := cl.Advertiser()
		if adv == nil {
			t.Skip(why)
		}
		start := time.Now()
		NewWithT(t).Expect(adv.WaitWithdrawn(context.Background(), addr)).To(Succeed())
		t.Logf("%s withdrawn %v after the check began", addr, time.Since(start).Round(time.Millisecond))
	})
}

func strs(addrs []netip.Addr) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// reasons lists the reasons of the Events about a Service.
func reasons(ns, name string) []string {
	list, err := cl.Client().CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	return out
}

// sub returns the /bits sub-prefix at offset (in addresses) of the
// cluster's IPv4 pool. Specs use disjoint slices of it.
func sub(offset, bits int) string {
	v4, _ := cl.Pools()
	a := netip.MustParsePrefix(v4).Addr()
	for i := 0; i < offset; i++ {
		a = a.Next()
	}
	return netip.PrefixFrom(a, bits).Masked().String()
}

func TestAddressAssignedAndAdvertised(t *testing.T) {
	pool := sub(0, 30)
	s := newSpec(t, map[string]string{"cidr-NS": pool})
	addr := s.address1(s.create("web").Name)
	s.g.Expect(netip.MustParsePrefix(pool).Contains(addr)).To(BeTrue(), "address %s outside the pool %s", addr, pool)
	svc := s.get("web")
	s.g.Expect(svc.Spec.LoadBalancerIP).To(Equal(addr.String()))
	s.g.Expect(svc.Labels).To(HaveKeyWithValue("implementation", "kube-vip"))
	s.g.Eventually(func() []string { return reasons(s.ns, "web") }, 10*time.Second).Should(ContainElement(decide.ReasonAddressAssigned))
	s.advertised("web", addr)
}

func TestAddressReleasedAndWithdrawnOnDelete(t *testing.T) {
	s := newSpec(t, map[string]string{"cidr-NS": sub(4, 30)})
	first := s.address1(s.create("a").Name)
	s.advertised("a", first)
	s.g.Expect(cl.Client().CoreV1().Services(s.ns).Delete(context.Background(), "a", metav1.DeleteOptions{})).To(Succeed())
	s.withdrawn(first)
	// The freed address is the lowest again: the next Service gets it.
	s.g.Expect(s.address1(s.create("b").Name)).To(Equal(first))
	s.advertised("b", first)
}

func TestPoolChange(t *testing.T) {
	oldPool, newPool := sub(8, 30), sub(12, 30)
	s := newSpec(t, map[string]string{"cidr-NS": oldPool})
	before := s.address1(s.create("before").Name)
	s.config(map[string]string{"cidr-NS": newPool})
	after := s.address1(s.create("after").Name)
	s.g.Expect(netip.MustParsePrefix(newPool).Contains(after)).To(BeTrue(), "after = %s, want it from the new pool %s", after, newPool)
	s.advertised("after", after)
	// The first Service keeps its address, outside the new pool, is told
	// so, and stays advertised.
	s.g.Consistently(func() string { return s.annotation("before") }, 2*time.Second, 200*time.Millisecond).Should(Equal(before.String()))
	s.g.Eventually(func() []string { return reasons(s.ns, "before") }, 20*time.Second).Should(ContainElement(decide.ReasonAddressOutsidePool))
	s.advertised("before", before)
}

func TestDualStack(t *testing.T) {
	_, v6 := cl.Pools()
	if v6 == "" {
		t.Skipf("the %s cluster has no IPv6 Service range", cl.Name())
	}
	s := newSpec(t, map[string]string{"cidr-NS": sub(16, 30) + "," + v6})
	policy := corev1.IPFamilyPolicyRequireDualStack
	addrs := s.address(s.create("dual", func(svc *corev1.Service) {
		svc.Spec.IPFamilyPolicy = &policy
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	}).Name)
	s.g.Expect(addrs).To(HaveLen(2), "dual-stack addresses %v", addrs)
	s.g.Expect(addrs[0].Is4()).To(BeTrue())
	s.g.Expect(addrs[1].Is6()).To(BeTrue())
	s.g.Expect(netip.MustParsePrefix(v6).Contains(addrs[1])).To(BeTrue(), "%s outside %s", addrs[1], v6)
	s.advertised("dual", addrs...)
}

func TestControllerRestartChangesNoAddress(t *testing.T) {
	s := newSpec(t, map[string]string{"cidr-NS": sub(24, 29)})
	before := map[string]netip.Addr{}
	for i := range 4 {
		name := fmt.Sprintf("s%d", i)
		before[name] = s.address1(s.create(name).Name)
	}
	for name, a := range before {
		s.advertised(name, a)
	}
	start := time.Now()
	s.g.Expect(cl.RestartController(context.Background())).To(Succeed())
	t.Logf("controller restarted in %v", time.Since(start).Round(time.Millisecond))
	after := s.address1(s.create("new").Name)
	for name, a := range before {
		s.g.Expect(after).NotTo(Equal(a), "the new Service got %s's address", name)
	}
	// Nothing moves, and kube-vip keeps advertising, across the restart.
	adv, _ := cl.Advertiser()
	s.g.Consistently(func() error {
		for name, a := range before {
			if got := s.annotation(name); got != a.String() {
				return fmt.Errorf("%s changed address across the restart: %s, then %s", name, a, got)
			}
			if adv != nil {
				if on, err := adv.Advertised(context.Background(), a); !on {
					return fmt.Errorf("%s (%s) no longer advertised (%v)", a, name, err)
				}
			}
		}
		return nil
	}, 3*time.Second, 250*time.Millisecond).Should(Succeed())
	s.advertised("new", after)
}

// TestControllerActsAsItsServiceAccount reads the API server's audit log
// (the local API server's, or kind's control plane's):
// every request the controller process made was made as the manifest's
// ServiceAccount, it includes the write that assigned the address, and
// neither the controller nor kube-vip (with the RBAC of kind/kube-vip.yaml)
// was ever refused anything.
func TestControllerActsAsItsServiceAccount(t *testing.T) {
	aud, ok := cl.(Auditor)
	if !ok {
		t.Skipf("the %s cluster keeps no audit log the suite can read; there the controller runs as the StatefulSet's pod, "+
			"and TestControllerRunsWithTheManifestRBAC checks its rights", cl.Name())
	}
	s := newSpec(t, map[string]string{"cidr-NS": sub(32, 30)})
	s.address1(s.createBare("whoami"))
	var users, denied []string
	s.g.Eventually(func() error {
		evs, err := aud.Requests()
		if err != nil {
			return err
		}
		users, denied = nil, nil
		wrote := false
		for _, e := range evs {
			if e.Stage != "ResponseComplete" {
				continue
			}
			// The controller and kube-vip only: on kind, kube-controller-manager's
			// own controllers are refused writes into the specs' namespaces
			// being deleted (403 too), which says nothing about these RBACs.
			if (e.User.Username == ControllerUser || e.User.Username == kubeVIPUser) && e.ResponseStatus != nil && e.ResponseStatus.Code == 403 &&
				(e.ObjectRef == nil || !isDeniedOnPurpose(e.ObjectRef.Namespace)) {
				denied = append(denied, fmt.Sprintf("%s %s %+v", e.User.Username, e.Verb, e.ObjectRef))
			}
			if !strings.HasPrefix(e.UserAgent, "kube-vip-cloud-provider") {
				continue
			}
			if !slices.Contains(users, e.User.Username) {
				users = append(users, e.User.Username)
			}
			if r := e.ObjectRef; r != nil && r.Resource == "services" && r.Subresource == "" && r.Namespace == s.ns && r.Name == "whoami" &&
				(e.Verb == "update" || e.Verb == "patch") && e.ResponseStatus != nil && e.ResponseStatus.Code < 300 {
				wrote = wrote || e.User.Username == ControllerUser
			}
		}
		if !wrote {
			return fmt.Errorf("no successful write of %s/whoami by the controller in the audit log yet (users so far %v)", s.ns, users)
		}
		return nil
	}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
	s.g.Expect(users).To(Equal([]string{ControllerUser}), "the controller process made requests as someone else")
	s.g.Expect(denied).To(BeEmpty(), "requests the RBAC of the manifests refused")
}

// kubeVIPUser is kube-vip's ServiceAccount (kind/kube-vip.yaml).
const kubeVIPUser = "system:serviceaccount:kube-system:" + kubeVIPSA

// deniedOnPurpose is the namespace where the controller is refused
// writes on purpose.
var deniedOnPurpose atomic.Pointer[string]

func isDeniedOnPurpose(ns string) bool {
	p := deniedOnPurpose.Load()
	return p != nil && *p == ns
}

// TestControllerRunsWithTheManifestRBAC takes the right to update Services
// away from the manifest's ClusterRole: the controller must stop writing,
// then assign as soon as the right is back.
func TestControllerRunsWithTheManifestRBAC(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	roles := cl.Client().RbacV1().ClusterRoles()
	cr, err := roles.Get(ctx, "system:kube-vip-cloud-controller-role", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	orig := cr.DeepCopy()
	changed := 0
	var rules []rbacv1.PolicyRule
	for _, r := range cr.Rules {
		if slices.Contains(r.Resources, "services") {
			n := len(r.Verbs)
			r.Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == "update" || v == "patch" })
			changed += n - len(r.Verbs)
		}
		rules = append(rules, r)
	}
	g.Expect(changed).To(BeNumerically(">", 0), "the ClusterRole grants no update or patch of services: %+v", cr.Rules)
	cr.Rules = rules
	_, err = roles.Update(ctx, cr, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	restore := func() {
		cur, err := roles.Get(ctx, orig.Name, metav1.GetOptions{})
		if err == nil {
			cur.Rules = orig.Rules
			_, err = roles.Update(ctx, cur, metav1.UpdateOptions{})
		}
		g.Expect(err).NotTo(HaveOccurred(), "restore the ClusterRole")
	}
	t.Cleanup(restore)
	s := newSpec(t, map[string]string{"cidr-NS": sub(36, 30)})
	deniedOnPurpose.Store(&s.ns)
	s.createBare("denied")
	s.g.Consistently(func() string { return s.annotation("denied") }, 3*time.Second, 200*time.Millisecond).
		Should(BeEmpty(), "the controller wrote without the right to: it is not running as the ServiceAccount")
	restore()
	s.address1("denied")
}

func TestTwoHundredServicesAtOnceAllDistinct(t *testing.T) {
	const n = 200
	pool := "203.0.113.0/24"
	// A pool of its own; nothing behind the Services, so kube-vip
	// announces none of them.
	s := newSpec(t, map[string]string{"cidr-NS": pool})
	start := time.Now()
	testenv.Each(n, 20, func(i int) { s.createBare(fmt.Sprintf("s%03d", i)) })
	created := time.Since(start)
	var list *corev1.ServiceList
	s.g.Eventually(func() (int, error) {
		var err error
		if list, err = cl.Client().CoreV1().Services(s.ns).List(context.Background(), metav1.ListOptions{}); err != nil {
			return 0, err
		}
		got := 0
		for _, svc := range list.Items {
			if svc.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
				got++
			}
		}
		return got, nil
	}, 2*time.Minute, 200*time.Millisecond).Should(Equal(n))
	t.Logf("%d Services created in %v, all with an address after %v", n, created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	byAddr := map[string]string{}
	for _, svc := range list.Items {
		a := svc.Annotations[decide.AnnotationLoadBalancerIPs]
		s.g.Expect(netip.MustParsePrefix(pool).Contains(netip.MustParseAddr(a))).To(BeTrue(), "%s: %s outside %s", svc.Name, a, pool)
		s.g.Expect(svc.Spec.LoadBalancerIP).To(Equal(a), "%s: spec.loadBalancerIP", svc.Name)
		other, dup := byAddr[a]
		s.g.Expect(dup).To(BeFalse(), "%s given to both %s and %s", a, other, svc.Name)
		byAddr[a] = svc.Name
	}
}
