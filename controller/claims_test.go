package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// runSecond runs one more controller with the harness's options (two
// active controllers: a stale leader, or an old and a new one side by
// side) until the test ends.
func (h *harness) runSecond(mod func(*controller.Options)) {
	o := controller.Options{ConfigMapName: h.cmName, ConfigMapNamespace: h.cmNS,
		RetryBaseDelay: 50 * time.Millisecond, RetryMaxDelay: 2 * time.Second}
	mod(&o)
	ctx, stop := context.WithCancel(klog.NewContext(context.Background(), logr.Discard()))
	done := make(chan struct{})
	c := controller.New(client, o)
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	h.t.Cleanup(func() { stop(); <-done })
	h.eventually(10*time.Second, "second controller ready", func() (bool, string) { return c.Ready(), "not ready" })
}

// deleteClaims removes the claims of this provider (tests share the API
// server; claims are cluster-wide).
func deleteClaims(t *testing.T) {
	t.Helper()
	list, err := client.NetworkingV1().IPAddresses().List(context.Background(), metav1.ListOptions{
		LabelSelector: networkingv1.LabelManagedBy + "=" + engine.ManagedBy})
	if err != nil {
		t.Fatalf("list IPAddresses: %v", err)
	}
	for _, ip := range list.Items {
		_ = client.NetworkingV1().IPAddresses().Delete(context.Background(), ip.Name, metav1.DeleteOptions{})
	}
}

// duplicates counts the addresses held by more than one Service of ns.
func duplicates(t *testing.T, ns string) (int, map[string]string) {
	t.Helper()
	list, err := client.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holder := map[string]string{}
	dups := 0
	for _, s := range list.Items {
		a := s.Annotations[decide.AnnotationLoadBalancerIPs]
		if a == "" {
			continue
		}
		if _, ok := holder[a]; ok {
			dups++
			continue
		}
		holder[a] = s.Name
	}
	return dups, holder
}

// Two copies of the controller, both active, 400 Services at once: with
// address claims, every Service gets an address no other Service has, and
// every address held has a claim labelled as ours whose parent is its
// holder.
func TestTwoActiveControllersWithClaimsNeverDoubleAllocate(t *testing.T) {
	const n = 400
	t.Cleanup(func() { deleteClaims(t) })
	h := newHarness(t, map[string]string{"cidr-global": "10.40.0.0/22"})
	claims := func(o *controller.Options) { o.AddressClaims = true; o.Workers = 8 }
	h.start(claims)
	h.runSecond(claims)
	h.createBurst(n, nil)
	assertAllDistinct(t, h, n, nil)
	h.eventually(30*time.Second, "every held address claimed for its holder", func() (bool, string) {
		_, holder := duplicates(t, h.ns)
		for a, name := range holder {
			ip, err := client.NetworkingV1().IPAddresses().Get(context.Background(), a, metav1.GetOptions{})
			if err != nil {
				return false, fmt.Sprintf("%s (held by %s): %v", a, name, err)
			}
			if ip.Labels[networkingv1.LabelManagedBy] != engine.ManagedBy || ip.Spec.ParentRef == nil ||
				ip.Spec.ParentRef.Resource != "services" || ip.Spec.ParentRef.Namespace != h.ns || ip.Spec.ParentRef.Name != name {
				return false, fmt.Sprintf("%s: claim %v %+v, want ours for %s/%s", a, ip.Labels, ip.Spec.ParentRef, h.ns, name)
			}
		}
		return true, ""
	})
}

// The same without claims can fail: the test above is not vacuous. Two
// active controllers deciding from their own memory give some address to
// two Services (measured: 18 of 1,000); up to three bursts are tried.
func TestTwoActiveControllersWithoutClaimsDoubleAllocate(t *testing.T) {
	const n = 400
	found := 0
	for round := 0; round < 3 && found == 0; round++ {
		h := newHarness(t, map[string]string{"cidr-global": fmt.Sprintf("10.%d.0.0/22", 44+round*4)})
		off := func(o *controller.Options) { o.AddressClaims = false; o.Workers = 8 }
		h.start(off)
		h.runSecond(off)
		h.createBurst(n, nil)
		h.eventually(60*time.Second, "every Service written", func() (bool, string) {
			list, _ := client.CoreV1().Services(h.ns).List(context.Background(), metav1.ListOptions{})
			got := 0
			for _, s := range list.Items {
				if s.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
					got++
				}
			}
			return got == n, fmt.Sprintf("%d of %d", got, n)
		})
		found, _ = duplicates(t, h.ns)
		t.Logf("round %d: %d addresses held by two Services", round+1, found)
	}
	if found == 0 {
		t.Fatal("without claims, two active controllers never double-allocated: this test cannot show what claims prevent")
	}
}
