package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// fakeCluster is an API server and a cache in one: the cache shows what
// the store holds unless a test holds it back. Its Patch checks the
// resourceVersion, and a test may make it fail or run a hook first.
type fakeCluster struct {
	store map[string]*corev1.Service
	cache map[string]*corev1.Service
	rv    int
	// beforePatch runs before a write is applied; a non-nil error is
	// returned instead (after the hook's own changes).
	beforePatch func(from *corev1.Service) error
	// lose makes the next writes land but answer with a time-out.
	lose int
}

var services = schema.GroupResource{Resource: "services"}

func newFake() *fakeCluster {
	return &fakeCluster{store: map[string]*corev1.Service{}, cache: map[string]*corev1.Service{}}
}

// put stores svc (a user's write) and shows it in the cache.
func (f *fakeCluster) put(svc *corev1.Service) *corev1.Service {
	f.rv++
	svc = svc.DeepCopy()
	svc.ResourceVersion = strconv.Itoa(f.rv)
	f.store[decide.Key(svc)] = svc
	f.cache[decide.Key(svc)] = svc
	return svc
}

func (f *fakeCluster) Cached(key string) (*corev1.Service, bool) {
	s, ok := f.cache[key]
	return s, ok
}

func (f *fakeCluster) List() []*corev1.Service {
	var out []*corev1.Service
	for _, k := range sortedKeys(f.cache) {
		out = append(out, f.cache[k])
	}
	return out
}

func (f *fakeCluster) Live(_ context.Context, key string) (*corev1.Service, error) {
	s, ok := f.store[key]
	if !ok {
		return nil, apierrors.NewNotFound(services, key)
	}
	return s, nil
}

func (f *fakeCluster) Patch(_ context.Context, from, to *corev1.Service) (*corev1.Service, error) {
	if f.beforePatch != nil {
		if err := f.beforePatch(from); err != nil {
			return nil, err
		}
	}
	key := decide.Key(from)
	if cur, ok := f.store[key]; !ok || cur.ResourceVersion != from.ResourceVersion {
		return nil, apierrors.NewConflict(services, key, errors.New("stale"))
	}
	stored := f.put(to)
	if f.lose > 0 {
		f.lose--
		return nil, apierrors.NewTimeoutError("answer lost", 1)
	}
	return stored, nil
}

func sortedKeys(m map[string]*corev1.Service) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

type fakeRecorder struct{ events []string }

func (r *fakeRecorder) Event(obj runtime.Object, _, reason, message string) {
	name := "?"
	if m, ok := obj.(metav1.Object); ok {
		name = m.GetNamespace() + "/" + m.GetName()
	}
	r.events = append(r.events, fmt.Sprintf("%s %s: %s", name, reason, message))
}

func lb(name string, annotations map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: annotations},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
}

type harness struct {
	f     *fakeCluster
	rec   *fakeRecorder
	e     *Engine
	woken []string
}

func newHarness(t *testing.T, data map[string]string, flaws mutant.Flaws) *harness {
	t.Helper()
	h := &harness{f: newFake(), rec: &fakeRecorder{}}
	h.e = New(h.f, h.rec, nil, func(k string) { h.woken = append(h.woken, k) }, Options{Decide: decide.Options{Flaws: flaws}})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubevip", ResourceVersion: "1"}, Data: data}
	h.e.Start(context.Background(), cm, nil)
	return h
}

func (h *harness) sync(t *testing.T, key string) {
	t.Helper()
	if _, err := h.e.SyncService(context.Background(), key); err != nil {
		t.Logf("sync %s: %v", key, err)
	}
}

func (h *harness) addr(key string) string {
	return h.f.store[key].Annotations[decide.AnnotationLoadBalancerIPs]
}

// A write whose answer is lost keeps its address reserved; a live read
// settles it: the Events are recorded once it shows the write landed.
func TestALostAnswerKeepsTheAddressUntilALiveReadSettlesIt(t *testing.T) {
	h := newHarness(t, map[string]string{"range-global": "10.0.0.1-10.0.0.3"}, mutant.Flaws{})
	h.f.put(lb("a", nil))
	stale := h.f.cache["ns/a"]
	h.f.lose = 1
	h.sync(t, "ns/a")
	h.f.cache["ns/a"] = stale // the cache has not shown the write yet
	h.f.put(lb("b", nil))
	h.sync(t, "ns/b")
	if h.addr("ns/a") != "10.0.0.1" || h.addr("ns/b") != "10.0.0.2" {
		t.Fatalf("a %q, b %q: the lost write's address was handed out again", h.addr("ns/a"), h.addr("ns/b"))
	}
	before := len(h.rec.events)
	h.sync(t, "ns/a") // settled by a live read: it landed
	if len(h.rec.events) != before+1 || !slices.ContainsFunc(h.rec.events, func(e string) bool { return e == `ns/a AddressAssigned: assigned 10.0.0.1 from pool "global"` }) {
		t.Errorf("events %v: want the AddressAssigned of the write that landed, once", h.rec.events[before:])
	}
}

// Two Services carry one address with colliding ports; the later one
// waits. When the first moves to another address (a change of its
// holding, not a release), the waiting one is woken at once.
func TestAnyAddressAHoldingGivesUpWakesTheWaiting(t *testing.T) {
	h := newHarness(t, map[string]string{"cidr-global": "10.6.0.0/29"}, mutant.Flaws{})
	mk := func(name, addr string) *corev1.Service {
		s := lb(name, map[string]string{decide.AnnotationLoadBalancerIPs: addr})
		s.Spec.Ports = []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}
		s.CreationTimestamp = metav1.Unix(int64(len(h.f.store)+1), 0)
		return s
	}
	h.f.put(mk("cc1", "10.6.0.1"))
	h.sync(t, "ns/cc1")
	h.f.put(mk("cc2", "10.6.0.1"))
	h.sync(t, "ns/cc2")
	if w := h.e.waitingKeys(); !slices.Equal(w, []string{"ns/cc2"}) {
		t.Fatalf("waiting %v, want cc2 told Conflict", w)
	}
	h.woken = nil
	moved := h.f.store["ns/cc1"].DeepCopy()
	moved.Annotations[decide.AnnotationLoadBalancerIPs] = "10.6.0.5"
	h.f.put(moved)
	h.sync(t, "ns/cc1")
	if !slices.Contains(h.woken, "ns/cc2") {
		t.Fatalf("woken %v: cc1 gave up 10.6.0.1, cc2 must be woken", h.woken)
	}
	h.sync(t, "ns/cc2")
	if len(h.e.waitingKeys()) != 0 {
		t.Errorf("still waiting: %v", h.e.waitingKeys())
	}
}

// A malformed key is reported once, not again with each new version of
// the ConfigMap that leaves it malformed.
func TestAMalformedKeyIsReportedOnce(t *testing.T) {
	h := newHarness(t, map[string]string{"cidr-global": "10.0.0.0/33"}, mutant.Flaws{})
	for i, data := range []map[string]string{
		{"cidr-global": "10.0.0.0/33", "cidr-x": "10.1.0.0/30"},
		{"cidr-global": "10.0.0.0/33", "cidr-x": "10.1.0.0/29"},
	} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubevip", ResourceVersion: strconv.Itoa(i + 2)}, Data: data}
		if !h.e.SetConfig(context.Background(), cm) {
			t.Fatal("a new version was taken for the one in force")
		}
		if h.e.SetConfig(context.Background(), cm) {
			t.Fatal("the version in force was loaded again")
		}
	}
	n := 0
	for _, e := range h.rec.events {
		if strings.HasPrefix(e, "kube-system/kubevip InvalidConfig") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d InvalidConfig Events, want 1: %v", n, h.rec.events)
	}
}
