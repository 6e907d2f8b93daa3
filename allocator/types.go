package allocator

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Family is an IP address family.
type Family int

// The two address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "IPv4" or "IPv6", the spelling Kubernetes uses in ipFamilies.
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

func (f Family) index() int {
	if f == IPv6 {
		return 1
	}
	return 0
}

// Families lists both families in a fixed order, for iteration.
var families = [2]Family{IPv4, IPv6}

// FamilyPolicy is a Service's ipFamilyPolicy.
type FamilyPolicy string

// The ipFamilyPolicy values, spelled as in the Kubernetes API.
const (
	SingleStack      FamilyPolicy = "SingleStack"
	PreferDualStack  FamilyPolicy = "PreferDualStack"
	RequireDualStack FamilyPolicy = "RequireDualStack"
)

// Port is one port of a Service with its protocol ("TCP", "UDP", "SCTP").
// Two Services may share an address only when no Port of one equals a Port
// of the other.
type Port struct {
	Number   int32
	Protocol string
}

// String formats p as PORT/PROTOCOL, e.g. "53/UDP".
func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Number, p.Protocol) }

// ParsePort parses PORT/PROTOCOL ("443/TCP"); a missing protocol means TCP.
func ParsePort(s string) (Port, error) {
	num, proto, found := strings.Cut(strings.TrimSpace(s), "/")
	if !found {
		proto = "TCP"
	}
	n, err := strconv.ParseInt(num, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return Port{}, fmt.Errorf("port %q: number must be 1-65535", s)
	}
	proto = strings.ToUpper(strings.TrimSpace(proto))
	switch proto {
	case "TCP", "UDP", "SCTP":
	default:
		return Port{}, fmt.Errorf("port %q: protocol must be TCP, UDP or SCTP", s)
	}
	return Port{Number: int32(n), Protocol: proto}, nil
}

// Request asks for the addresses of one Service.
type Request struct {
	// Owner identifies the Service ("namespace/name"). Addresses the owner
	// already holds never conflict with its own request.
	Owner string
	// Namespace selects the pool: the namespace's own keys, else the global ones.
	Namespace string
	// Families in order of preference (the Service's ipFamilies). Empty means
	// the first family the pool has, IPv4 before IPv6.
	Families []Family
	// Policy is the Service's ipFamilyPolicy; empty means SingleStack.
	Policy FamilyPolicy
	// Ports are the Service's ports; a Service without ports never shares.
	Ports []Port
	// Requested lists the addresses the user asked for (annotation or
	// spec.loadBalancerIP); empty means allocate automatically.
	Requested []netip.Addr
	// Granted says the Service already carries Requested because they were
	// given to it: a Service that is releasing them does not conflict. A
	// fresh request for an address on its way out waits instead.
	Granted bool
	// Carries says the Service carries Requested in the annotation that
	// kube-vip advertises: it does not conflict with a Contested holder
	// (one that came later), while a fresh request still does.
	Carries bool
}

// Result is the answer to a Request.
type Result struct {
	// Addrs holds one address per family, in the order of the request.
	Addrs []netip.Addr
	// Shared lists those of Addrs that other Services already hold.
	Shared []netip.Addr
	// Outside lists requested addresses that lie outside the namespace's
	// pool (allowed, as in the existing provider, but worth reporting).
	Outside []netip.Addr
	// Anycast lists requested IPv6 addresses whose low 64 bits are zero:
	// the Subnet-Router anycast address of their /64, which routers on that
	// link answer too. Never handed out automatically; allowed on request,
	// but worth reporting (see SubnetRouterAnycast).
	Anycast []netip.Addr
	// Pool names the pool the request drew from ("global" or a namespace);
	// empty when the namespace has no pool and the addresses were requested.
	Pool string
	// Unavailable says, for a PreferDualStack request answered with one
	// family only, why the other family could not be had
	// (ReasonFamilyUnavailable or ReasonExhausted).
	Unavailable []*Error
}

// Holding records the addresses one Service holds, with what sharing needs
// to know about it.
type Holding struct {
	Owner     string
	Namespace string
	Ports     []Port
	Addrs     []netip.Addr
	// Releasing marks a Service that is giving its addresses up (it is no
	// longer a LoadBalancer, but still carries them): they are neither
	// handed out nor shared until it is released, yet a Service that
	// already carries one of them does not conflict with it.
	Releasing bool
	// Contested marks a Service that carries an address another Service
	// held first, with colliding ports (a user's doing). Its addresses stay
	// in use, never handed or shared to a third Service, but the Service
	// that held them first keeps them.
	Contested bool
	// Exclusive marks a holder this controller does not manage (another
	// loadBalancerClass, kube-vip.io/ignore, another load-balancer): its
	// addresses are never shared, whatever its ports.
	Exclusive bool
	// OnlyAsks marks a Service that carries none of its addresses: it only
	// asks for them (spec.loadBalancerIP, another tool's request
	// annotation), they are neither in the annotation kube-vip advertises
	// nor in its status. What it contests does not stand in the way of
	// another request for the same address: of the Services asking, the
	// caller grants the address to one (the oldest waiting). Ignored on an
	// Exclusive holding.
	OnlyAsks bool
	// Also lists further addresses the Service is served on without
	// holding them as its own: its status.loadBalancer.ingress, a refused
	// or stale spec.loadBalancerIP. They are in use, as Contested ones
	// are: never handed out automatically, yielding to a Service that
	// carries them, and shared on request only as Ports and Exclusive allow.
	Also []netip.Addr
}
