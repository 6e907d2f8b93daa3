package controller_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

// The control plane is shared by every test of the package: starting it
// costs seconds. Tests keep out of each other's way by using their own
// namespaces, ConfigMap and address ranges.
var (
	testEnv    *envtest.Environment
	client     kubernetes.Interface
	restConfig *rest.Config
)

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set: these tests need a real kube-apiserver and etcd.\n"+
			"Run `make test`, which installs them, or export KUBEBUILDER_ASSETS=$(hack/envtest.sh).")
		os.Exit(1)
	}
	testEnv = &envtest.Environment{}
	// Room for thousands of dual-stack Services.
	testEnv.ControlPlane.GetAPIServer().Configure().
		Set("service-cluster-ip-range", "10.96.0.0/16,fd00:10:96::/112")
	cfg, err := testEnv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start envtest:", err)
		os.Exit(1)
	}
	restConfig = cfg
	client = kubernetes.NewForConfigOrDie(cfg)
	code := m.Run()
	if err := testEnv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop envtest:", err)
	}
	os.Exit(code)
}

// harness is one test's controller, ConfigMap and namespace.
type harness struct {
	t         *testing.T
	ns        string
	cmName    string
	cmNS      string
	ctx       context.Context
	stop      context.CancelFunc
	done      chan struct{}
	metrics   *controller.Metrics
	registry  *prometheus.Registry
	lastStart controller.Options
	// client, when set, is the controller's client instead of the shared one.
	client kubernetes.Interface
	// logs, when set, collects the controller's log lines at the default
	// verbosity (what an operator sees without -v).
	logs *logLines
}

var nsSeq struct {
	sync.Mutex
	n int
}

// newHarness creates a namespace and a ConfigMap with data (nil: none).
func newHarness(t *testing.T, data map[string]string) *harness {
	t.Helper()
	nsSeq.Lock()
	nsSeq.n++
	n := nsSeq.n
	nsSeq.Unlock()
	h := &harness{t: t, ns: fmt.Sprintf("t%d-%s", n, strings.ToLower(sanitize(t.Name()))), cmName: fmt.Sprintf("kubevip-%d", n), cmNS: "kube-system"}
	if len(h.ns) > 60 {
		h.ns = h.ns[:60]
	}
	h.ns = strings.TrimRight(h.ns, "-")
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	if data != nil {
		h.setConfig(data)
	}
	t.Cleanup(func() {
		h.stopController()
		// envtest runs no namespace controller: delete what we made.
		deleteServices(h.ns)
		_ = client.CoreV1().ConfigMaps(h.cmNS).Delete(ctx, h.cmName, metav1.DeleteOptions{})
		_ = client.CoreV1().ConfigMaps(h.cmNS).Delete(ctx, h.cmName+controller.LastGoodSuffix, metav1.DeleteOptions{})
	})
	return h
}

// deleteServices deletes every Service of ns (Services have no
// DeleteCollection).
func deleteServices(ns string) {
	ctx := context.Background()
	list, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, s := range list.Items {
		_ = client.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{})
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s)
}

func (h *harness) setConfig(data map[string]string) {
	h.t.Helper()
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: h.cmName, Namespace: h.cmNS}, Data: data}
	cur, err := client.CoreV1().ConfigMaps(h.cmNS).Get(ctx, h.cmName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = client.CoreV1().ConfigMaps(h.cmNS).Create(ctx, cm, metav1.CreateOptions{})
	case err == nil:
		cur.Data = data
		_, err = client.CoreV1().ConfigMaps(h.cmNS).Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		h.t.Fatalf("write ConfigMap: %v", err)
	}
}

// start runs a controller for this harness until stopController.
func (h *harness) start(mod func(*controller.Options)) {
	h.t.Helper()
	h.registry = prometheus.NewRegistry()
	h.metrics = controller.NewMetrics(h.registry)
	o := controller.Options{ConfigMapName: h.cmName, ConfigMapNamespace: h.cmNS, Metrics: h.metrics,
		RetryBaseDelay: 50 * time.Millisecond, RetryMaxDelay: 2 * time.Second}
	if mod != nil {
		mod(&o)
	}
	h.lastStart = o
	// Logs go nowhere unless asked for: a controller outlives its test's
	// last line by a moment, and its logs would be attributed to no test.
	logger := logr.Discard()
	if os.Getenv("KVCP_TEST_LOG") != "" {
		logger = ktesting.NewLogger(h.t, ktesting.NewConfig(ktesting.Verbosity(2)))
	}
	if h.logs != nil {
		logger = h.logs.logger()
	}
	h.ctx, h.stop = context.WithCancel(klog.NewContext(context.Background(), logger))
	h.done = make(chan struct{})
	cl := client
	if h.client != nil {
		cl = h.client
	}
	c := controller.New(cl, o)
	go func() {
		defer close(h.done)
		if err := c.Run(h.ctx); err != nil {
			h.t.Errorf("controller: %v", err)
		}
	}()
	h.eventually(10*time.Second, "controller ready", func() (bool, string) { return c.Ready(), "not ready" })
}

func (h *harness) stopController() {
	if h.stop == nil {
		return
	}
	h.stop()
	<-h.done
	h.stop = nil
}

type svcOpt func(*corev1.Service)

func ports(ps ...string) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ps {
			var n int32
			var proto string
			fmt.Sscanf(strings.Replace(p, "/", " ", 1), "%d %s", &n, &proto)
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{
				Name: strings.ToLower(fmt.Sprintf("%s-%d", proto, n)), Port: n,
				Protocol: corev1.Protocol(proto), TargetPort: intstr.FromInt32(n)})
		}
	}
}

func inNamespace(ns string) svcOpt { return func(s *corev1.Service) { s.Namespace = ns } }

func withIP(ip string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerIP = ip } }

func withAnnotation(k, v string) svcOpt {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func withClass(c string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c } }

func dualStack(policy corev1.IPFamilyPolicy, fams ...corev1.IPFamily) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &policy
		s.Spec.IPFamilies = fams
	}
}

// newService returns a LoadBalancer Service with one TCP port.
func (h *harness) newService(name string, opts ...svcOpt) *corev1.Service {
	no := false
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: &no,
			Selector:                      map[string]string{"app": name},
		},
	}
	ports("80/TCP")(s)
	for _, o := range opts {
		o(s)
	}
	return s
}

func (h *harness) create(name string, opts ...svcOpt) *corev1.Service {
	h.t.Helper()
	want := h.newService(name, opts...)
	s, err := client.CoreV1().Services(want.Namespace).Create(context.Background(), want, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatalf("create Service %s/%s: %v", want.Namespace, name, err)
	}
	return s
}

// createBurst creates Services s000..s<n-1> from 16 parallel clients,
// calling created after each (when not nil).
func (h *harness) createBurst(n int, created func()) {
	h.t.Helper()
	testenv.Each(n, 16, func(i int) {
		h.create(fmt.Sprintf("s%03d", i))
		if created != nil {
			created()
		}
	})
}

func (h *harness) get(ns, name string) *corev1.Service {
	h.t.Helper()
	s, err := client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("get Service %s/%s: %v", ns, name, err)
	}
	return s
}

func (h *harness) delete(ns, name string) {
	h.t.Helper()
	if err := client.CoreV1().Services(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatalf("delete Service %s/%s: %v", ns, name, err)
	}
}

// eventually polls cond until it holds or the timeout passes.
func (h *harness) eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addressOf waits for the Service to carry the annotation and returns it.
func (h *harness) addressOf(ns, name string) string {
	h.t.Helper()
	var got string
	h.eventually(15*time.Second, "address of "+ns+"/"+name, func() (bool, string) {
		s := h.get(ns, name)
		got = s.Annotations[decide.AnnotationLoadBalancerIPs]
		return got != "", fmt.Sprintf("annotations %v", s.Annotations)
	})
	return got
}

// events returns the reasons and messages of the Events about an object.
func events(ns, kind, name string) []corev1.Event {
	list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name})
	if err != nil {
		return nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].CreationTimestamp.Before(&list.Items[j].CreationTimestamp) })
	return list.Items
}

// waitEvent waits for an Event with reason whose message contains substr.
func (h *harness) waitEvent(ns, kind, name, reason, substr string) corev1.Event {
	h.t.Helper()
	var found corev1.Event
	h.eventually(15*time.Second, fmt.Sprintf("Event %s on %s %s/%s", reason, kind, ns, name), func() (bool, string) {
		evs := events(ns, kind, name)
		var seen []string
		for _, e := range evs {
			if e.Reason == reason && strings.Contains(e.Message, substr) {
				found = e
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return false, fmt.Sprintf("events so far: %q", seen)
	})
	return found
}
