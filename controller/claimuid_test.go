package controller_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// clusterIP makes the Service a ClusterIP Service: it asks for no address.
func clusterIP(s *corev1.Service) {
	s.Spec.Type, s.Spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeClusterIP, nil
}

// getClaim reads the IPAddress addr.
func getClaim(t *testing.T, addr string) *networkingv1.IPAddress {
	t.Helper()
	ip, err := client.NetworkingV1().IPAddresses().Get(context.Background(), addr, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get IPAddress %s: %v", addr, err)
	}
	return ip
}

// atTheStartOfASecond sleeps until just after the wall clock turns to the
// next second, so that what follows has most of a second to fit in.
func atTheStartOfASecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
}

// recreateInTheClaimsSecond deletes the Service ns/name and creates it
// again as a ClusterIP Service, and reports whether the new one was
// created in the same second as the claim of addr (creation times have a
// second's resolution: by them alone, the two cannot be told apart).
func (h *harness) recreateInTheClaimsSecond(name, addr string) bool {
	h.t.Helper()
	h.delete(h.ns, name)
	again := h.create(name, clusterIP)
	return again.CreationTimestamp.Unix() == getClaim(h.t, addr).CreationTimestamp.Unix()
}

// inTheClaimsSecond calls try, which sets a claim up and creates its
// Service again, until the new Service is created within the claim's
// second (try reports it), at most 5 times; undo clears what a failed
// attempt left.
func (h *harness) inTheClaimsSecond(try func() bool, undo func()) {
	h.t.Helper()
	for attempt := 1; !try(); attempt++ {
		if attempt == 5 {
			h.t.Fatalf("the Service was never created again within its claim's second in %d attempts", attempt)
		}
		h.t.Logf("attempt %d: the Service was created again after its claim's second; once more", attempt)
		undo()
	}
}

// A Service deleted and created again with the same name while no
// controller ran, both within the second its address was claimed in: the
// claim records the UID of the Service it was made for, so the controller
// tells the new Service from the old one (creation times cannot) and
// frees the address as it starts, rather than keep it for the grace
// period.
func TestClaimOfAServiceRecreatedInTheSameSecondIsFreedAtStart(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	const addr = "10.68.0.1"
	h := newHarness(t, map[string]string{"range-global": addr + "-10.68.0.2"})
	h.inTheClaimsSecond(func() bool {
		h.start(withProductionClaims)
		atTheStartOfASecond()
		first := h.create("a")
		if got := h.addressOf(h.ns, "a"); got != addr {
			t.Fatalf("a got %q, want %s", got, addr)
		}
		h.waitClaim(addr, h.ns, "a")
		if got, want := getClaim(t, addr).Annotations[engine.UIDsAnnotation], h.ns+"/a="+string(first.UID); got != want {
			t.Fatalf("the claim's %s = %q, want %q", engine.UIDsAnnotation, got, want)
		}
		h.stopController()
		return h.recreateInTheClaimsSecond("a", addr)
	}, func() {
		h.delete(h.ns, "a")
		deleteClaims(t)
	})

	h.start(withProductionClaims)
	h.waitClaim(addr, "", "")
	h.create("asks", withIP(addr))
	if got := h.addressOf(h.ns, "asks"); got != addr {
		t.Fatalf("asks got %q, want the %s it asked for, freed at start", got, addr)
	}
	h.waitClaim(addr, h.ns, "asks")
}

// A claim made by the previous version records no UIDs. After the upgrade
// it is honoured as before: its Service, there and carrying the address,
// keeps it and its claim; and a Service deleted and created again in the
// claim's second is given the benefit of the doubt (the creation times
// cannot tell them apart), the address kept for it until the grace
// period ends, not handed to another.
func TestClaimsOfThePreviousVersionAreHonoured(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	const (
		carried = "10.69.0.1"
		pending = "10.69.0.2"
	)
	h := newHarness(t, map[string]string{"range-global": carried + "-10.69.0.4"})
	h.annotated("holder", carried)
	putClaim(t, carried, engine.ManagedBy, h.ns, "holder")
	h.inTheClaimsSecond(func() bool {
		atTheStartOfASecond()
		h.create("again", clusterIP)
		putClaim(t, pending, engine.ManagedBy, h.ns, "again")
		return h.recreateInTheClaimsSecond("again", pending)
	}, func() {
		h.delete(h.ns, "again")
		if err := client.NetworkingV1().IPAddresses().Delete(context.Background(), pending, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete IPAddress %s: %v", pending, err)
		}
	})

	h.start(withProductionClaims)
	h.create("asks", withIP(pending))
	h.waitEvent(h.ns, "Service", "asks", decide.ReasonAllocationFailed, "Conflict")
	h.create("next")
	if got := h.addressOf(h.ns, "next"); got != "10.69.0.3" {
		t.Fatalf("next got %q, want 10.69.0.3: %s is claimed, %s too", got, carried, pending)
	}
	h.waitClaim(carried, h.ns, "holder")
	h.waitClaim(pending, h.ns, "again")
	if got := h.addressOf(h.ns, "holder"); got != carried {
		t.Fatalf("holder carries %q, want %s", got, carried)
	}
	if got := h.get(h.ns, "asks").Annotations; got[decide.AnnotationLoadBalancerIPs] != "" {
		t.Fatalf("asks got %v while the claim of %s stands", got, pending)
	}
}

// The claims store writes the UID of every Service a claim names (the
// owner, then the sharers, as they join) into the uids annotation, and
// reads a malformed one as none: the claim is honoured as one made by the
// previous version (judged by creation times), and the log says so.
func TestClaimUIDsAnnotation(t *testing.T) {
	t.Cleanup(func() { deleteClaims(t) })
	const (
		shared = "10.70.0.1"
		bad    = "10.70.0.3"
	)
	h := newHarness(t, map[string]string{"range-global": shared + "-10.70.0.2", "allow-share-global": "true"})
	h.logs = &logLines{}
	h.start(withProductionClaims)
	a := h.create("a", ports("80/TCP"))
	if got := h.addressOf(h.ns, "a"); got != shared {
		t.Fatalf("a got %q, want %s", got, shared)
	}
	b := h.create("b", ports("81/TCP"))
	if got := h.addressOf(h.ns, "b"); got != shared {
		t.Fatalf("b got %q, want the shared %s", got, shared)
	}
	h.waitSharers(shared, h.ns+"/b")
	if got, want := getClaim(t, shared).Annotations[engine.UIDsAnnotation], h.ns+"/a="+string(a.UID)+","+h.ns+"/b="+string(b.UID); got != want {
		t.Fatalf("the shared claim's %s = %q, want %q", engine.UIDsAnnotation, got, want)
	}
	h.stopController()

	// A claim whose annotation is malformed, naming a Service created
	// before it that does not carry its address (its write may be on its
	// way): young, and kept. Read in part, the wrong UID in it would free
	// it at once.
	h.setConfig(map[string]string{"range-global": shared + "-" + bad, "allow-share-global": "true"})
	h.create("pending", clusterIP)
	time.Sleep(1100 * time.Millisecond) // the claim is a second younger than its Service
	putClaim(t, bad, engine.ManagedBy, h.ns, "pending")
	ip := getClaim(t, bad)
	ip.Annotations = map[string]string{engine.UIDsAnnotation: h.ns + "/pending=not-its-uid,garbage"}
	if _, err := client.NetworkingV1().IPAddresses().Update(context.Background(), ip, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("annotate IPAddress %s: %v", bad, err)
	}
	h.start(withProductionClaims)
	h.waitLog("malformed UIDs annotation", bad)
	h.create("asks", withIP(bad))
	h.waitEvent(h.ns, "Service", "asks", decide.ReasonAllocationFailed, "Conflict")
	h.waitClaim(bad, h.ns, "pending")
	h.waitClaim(shared, h.ns, "a")
}
