package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNodeLostAddressMoves loses (kills) the node that advertises a
// Service's address: kube-vip on another node takes the address over and
// it answers from the host again, with the same address; once the node is
// back, the address is on exactly one node (nothing doubled) and still
// the Service's.
func TestNodeLostAddressMoves(t *testing.T) {
	nl, ok := cl.(NodeLoser)
	if !ok {
		t.Skipf("the %s cluster runs kube-vip as one process: there is no other node to take an address over", cl.Name())
	}
	adv, why := cl.Advertiser()
	if adv == nil {
		t.Skip(why)
	}
	ctx := context.Background()
	s := newSpec(t, map[string]string{"cidr-NS": sub(40, 30)})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor", Namespace: s.ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	noNodePorts(svc)
	s.g.Expect(nl.SpreadEchoes(ctx, svc)).To(Succeed())
	_, err := cl.Client().CoreV1().Services(s.ns).Create(ctx, svc, metav1.CreateOptions{})
	s.g.Expect(err).NotTo(HaveOccurred())
	addr := s.address1("survivor")
	s.advertised("survivor", addr)

	start := time.Now()
	lost, err := nl.LoseNode(ctx, addr)
	s.g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if err := nl.RestoreNode(context.Background()); err != nil {
			t.Errorf("bring node %s back: %v", lost, err)
		}
	})
	t.Logf("killed node %s, which advertised %s", lost, addr)
	s.g.Expect(adv.WaitAdvertised(ctx, s.get("survivor"), addr)).To(Succeed(), "%s not taken over after losing %s", addr, lost)
	on, err := nl.NodesAdvertising(ctx, addr)
	s.g.Expect(err).NotTo(HaveOccurred())
	s.g.Expect(on).To(HaveLen(1))
	s.g.Expect(on[0]).NotTo(Equal(lost))
	t.Logf("%s moved to %s and answers from the host %v after %s was lost", addr, on[0], time.Since(start).Round(time.Millisecond), lost)
	s.g.Expect(s.annotation("survivor")).To(Equal(addr.String()), "the address changed while a node was lost")

	start = time.Now()
	s.g.Expect(nl.RestoreNode(ctx)).To(Succeed())
	t.Logf("node %s back, with kube-vip and the controller ready, after %v", lost, time.Since(start).Round(time.Millisecond))
	s.g.Consistently(func() error {
		on, err := nl.NodesAdvertising(ctx, addr)
		if err != nil {
			return err
		}
		if len(on) != 1 {
			return fmt.Errorf("%s is on nodes %v: want exactly one", addr, on)
		}
		if got := s.annotation("survivor"); got != addr.String() {
			return fmt.Errorf("the Service's address is now %q, was %s", got, addr)
		}
		return nil
	}, 10*time.Second, 500*time.Millisecond).Should(Succeed())
	s.advertised("survivor", addr)
}

// TestHelmChartInstalls installs the controller with the Helm chart in
// place of the manifest's: a Service gets an address from the chart's
// ConfigMap's pool, kube-vip advertises it, and it answers from the host.
func TestHelmChartInstalls(t *testing.T) {
	ci, ok := cl.(ChartInstaller)
	if !ok {
		t.Skipf("the %s cluster runs the controller as a process, not from the chart: charts/run_test.go runs the chart's rendered controller against envtest",
			cl.Name())
	}
	ctx := context.Background()
	pool := sub(44, 30)
	start := time.Now()
	uninstall, err := ci.InstallChart(ctx, pool)
	t.Cleanup(func() {
		if uninstall != nil {
			if err := uninstall(context.Background()); err != nil {
				t.Errorf("uninstall the chart: %v", err)
			}
		}
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	t.Logf("chart installed, its controller ready, after %v", time.Since(start).Round(time.Millisecond))
	// No pool of its own: the Service draws from the chart's cidr-global.
	s := newSpec(t, nil)
	addr := s.address1(s.create("charted").Name)
	s.g.Expect(netip.MustParsePrefix(pool).Contains(addr)).To(BeTrue(), "address %s outside the chart's pool %s", addr, pool)
	s.advertised("charted", addr)
}
