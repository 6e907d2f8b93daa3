package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// Issue #12, "Fairness", on the real binary with its default workers (8):
// a pool of one address, held; twenty Services wait for it. Each time the
// holder goes, the Service that has waited longest gets the address, not
// whichever worker's sync comes first; a Service created just after the
// address freed up waits its turn too.
//
// creationTimestamp has a resolution of one second, and the Services are
// created faster than that: the names (w00, w01, ...) sort in the order
// they are created, so that the documented order (creation timestamp, then
// namespace/name) is the order of creation whatever seconds they fall in.
func TestFairWaitingServedOldestFirst(t *testing.T) {
	const waiting, rounds = 20, 10
	addr := "192.0.2.77" // TEST-NET-1: no other spec's
	s := newSpec(t, map[string]string{"range-NS": addr + "-" + addr})
	ctx := context.Background()
	svcs := cl.Client().CoreV1().Services(s.ns)

	holder := s.createBare("a-holder")
	s.g.Expect(s.address1(holder).String()).To(Equal(addr))
	var order []string
	for i := range waiting {
		order = append(order, s.createBare(fmt.Sprintf("w%02d", i)))
	}
	s.waitEvent(s.ns, order[waiting-1], decide.ReasonAllocationFailed, 10*time.Second, "PoolExhausted")

	// holderNow returns the Services that carry the address.
	holderNow := func() []string {
		list, err := svcs.List(ctx, metav1.ListOptions{})
		s.g.Expect(err).NotTo(HaveOccurred())
		var out []string
		for _, svc := range list.Items {
			if svc.Annotations[decide.AnnotationLoadBalancerIPs] != "" {
				out = append(out, svc.Name)
			}
		}
		return out
	}
	for round := range rounds {
		s.g.Expect(svcs.Delete(ctx, holder, metav1.DeleteOptions{})).To(Succeed())
		// Younger than every waiting one: it must not jump the queue.
		late := s.createBare(fmt.Sprintf("x-late%d", round))
		order = append(order, late)
		want := order[0]
		s.g.Eventually(holderNow, 30*time.Second, 20*time.Millisecond).ShouldNot(BeEmpty(), "round %d: no one got the address", round)
		s.g.Expect(holderNow()).To(ConsistOf(want), "round %d: the address should go to %s, the Service that has waited longest", round, want)
		s.g.Expect(s.address1(want).String()).To(Equal(addr))
		s.g.Consistently(holderNow, time.Second, 50*time.Millisecond).Should(ConsistOf(want), "round %d", round)
		holder, order = want, order[1:]
	}
}
