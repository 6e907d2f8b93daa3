package decide

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// Action says what the caller must do with a Decision.
type Action int

const (
	// None: nothing to do (not ours, or waiting for the cache to catch up
	// with our own last write).
	None Action = iota
	// Hold: the Service keeps the addresses it carries; record
	// Decision.Holding in the ledger. Nothing to write. With Err set, the
	// addresses conflict with another Service's: reported, still in use.
	Hold
	// Write: update the Service to Decision.Service (with its
	// resourceVersion), then record Decision.Holding in the ledger.
	Write
	// Fail: the Service holds nothing and cannot get an address now; report
	// the Events, release it from the ledger and retry with back-off.
	Fail
	// Release: the Service no longer holds an address; release it from the
	// ledger. When Decision.Service is not nil, write it first (it removes
	// the marks this provider left); the address stays reserved until that
	// write has landed.
	Release
)

// String names the action, for logs and traces.
func (a Action) String() string {
	return [...]string{"None", "Hold", "Write", "Fail", "Release"}[a]
}

// Event types, as in the Kubernetes API.
const (
	EventNormal  = corev1.EventTypeNormal
	EventWarning = corev1.EventTypeWarning
)

// Event is an Event to record on the Service.
type Event struct {
	Type    string
	Reason  string
	Message string
}

// Decision is what one Service should have.
type Decision struct {
	Action Action
	// Holding is what the Service holds after a Hold or a Write, or, for a
	// Release with a write to make, what stays reserved until it lands.
	Holding allocator.Holding
	// Service is the updated copy to write (Write, and some Releases).
	Service *corev1.Service
	// Events to record on the Service.
	Events []Event
	// Err is the allocator's error (an *allocator.Error) for a Fail or for a
	// Hold whose carried address conflicts, or the parse error of a
	// malformed address on the Service.
	Err error
	// Allocated is true when a Write gives the Service new addresses (rather
	// than filling in the annotation for addresses it already carries).
	Allocated bool
	// Waits: the Service keeps what it has but wants more (a family its
	// ipFamilyPolicy asks for): it is decided again when an address frees
	// up or the config changes.
	Waits bool
}

// Decide says what svc should have, given the config, the addresses in use
// (which may already include svc's own) and the options. It is pure: it
// changes neither usage nor svc.
func Decide(cfg *allocator.Config, usage *allocator.Usage, svc *corev1.Service, o Options) Decision {
	key := Key(svc)
	_, held := usage.Holding(key)
	if !IsLoadBalancer(svc) {
		marked := svc.Labels[LabelImplementation] == ImplementationKubeVIP && svc.Annotations[AnnotationLoadBalancerIPs] != ""
		// The API server clears spec.loadBalancerClass when the type
		// changes away from LoadBalancer: such a Service is ours if we
		// marked it, whatever class it had. One that still shows its
		// class (a LoadBalancer being deleted) is ours if the class is.
		cls := svc.Spec.LoadBalancerClass
		ours := svc.Annotations[AnnotationIgnore] != "true" &&
			(HandlesClass(svc, o) || (marked && svc.Spec.Type != corev1.ServiceTypeLoadBalancer && (cls == nil || *cls == "")))
		switch {
		case svc.DeletionTimestamp == nil && ours && marked:
			// The address stays reserved (Holding) until the write that
			// removes it has landed: should the user turn the Service back
			// into a LoadBalancer first, it still carries the address.
			addrs, _, _ := Addresses(svc)
			h := Holding(svc, addrs)
			h.Releasing = true
			return Decision{Action: Release, Service: stripped(svc), Holding: h, Events: []Event{{EventNormal, ReasonAddressReleased,
				fmt.Sprintf("type is %s: released %s", svc.Spec.Type, svc.Annotations[AnnotationLoadBalancerIPs])}}}
		case ours && hasCleanupFinalizer(svc):
			// Deleted, or no longer a LoadBalancer: its address is free, and
			// the finalizer the existing provider left must go.
			out := svc.DeepCopy()
			out.Finalizers = slices.DeleteFunc(out.Finalizers, func(f string) bool { return f == FinalizerLoadBalancerCleanup })
			return Decision{Action: Release, Service: out}
		case held:
			return Decision{Action: Release}
		}
		return Decision{}
	}
	addrs, src, err := Addresses(svc)
	if !Managed(svc, o) {
		// Not ours to write, but every address it is served on stays in
		// use, never handed out nor shared: another announcer has it.
		if inUse := InUse(svc); len(inUse) > 0 {
			h := Holding(svc, inUse)
			h.Exclusive = !o.Flaws.Has(mutant.ShareWithUnmanaged)
			return Decision{Action: Hold, Holding: h}
		}
		if held {
			return Decision{Action: Release}
		}
		return Decision{}
	}
	if err != nil {
		return failed(svc, err, refusal(cfg, usage, svc, err, ""))
	}
	if len(addrs) == 0 {
		if st := StatusAddresses(svc); len(st) > 0 {
			// Served by the tool the user left: adopted, not moved.
			return keep(cfg, usage, svc, st, srcStatus)
		}
	}
	if len(addrs) > 0 {
		return keep(cfg, usage, svc, addrs, src)
	}
	if held {
		// We wrote an address that the cache has not shown yet.
		return Decision{}
	}
	res, err := usage.Allocate(cfg, Request(svc, nil))
	if err != nil {
		return failed(svc, err, refusal(cfg, usage, svc, err, ""))
	}
	out := svc.DeepCopy()
	setAnnotation(out, AnnotationLoadBalancerIPs, JoinAddrs(res.Addrs))
	setLabel(out, LabelImplementation, ImplementationKubeVIP)
	out.Spec.LoadBalancerIP = res.Addrs[0].String()
	if iface := cfg.Interface(svc.Namespace); iface != "" {
		setAnnotation(out, AnnotationServiceInterface, iface)
	}
	msg := fmt.Sprintf("assigned %s from pool %q", JoinAddrs(res.Addrs), res.Pool)
	msg += sharing(usage, svc, res.Shared)
	evs := []Event{{EventNormal, ReasonAddressAssigned, msg}}
	// PreferDualStack settled for one family: say why the other is missing.
	for _, e := range res.Unavailable {
		evs = append(evs, Event{EventWarning, ReasonAllocationFailed,
			fmt.Sprintf("%s; ipFamilyPolicy %s: assigned %s only", e, allocator.PreferDualStack, JoinAddrs(res.Addrs))})
	}
	return Decision{Action: Write, Holding: Holding(svc, res.Addrs), Service: out, Allocated: true, Events: evs}
}

// srcStatus names the source of adopted addresses.
const srcStatus = "status.loadBalancer.ingress"

// failed is the decision for a managed Service that cannot have what it
// asks for. The addresses it is served on anyway (a parseable entry of a
// malformed annotation, a refused spec.loadBalancerIP, its status) stay in
// use, contested: never handed to another Service, nor taken from one
// that holds them. With none, it holds nothing.
func failed(svc *corev1.Service, err error, msg string) Decision {
	evs := []Event{{EventWarning, ReasonAllocationFailed, msg}}
	h := Holding(svc, nil)
	if len(h.Also) == 0 {
		return Decision{Action: Fail, Err: err, Events: evs}
	}
	h.Contested = true
	// What an invalid request carries is no one's to share.
	as, _, perr := Addresses(svc)
	h.Exclusive = perr != nil || !OnePerFamily(as)
	h.OnlyAsks = !h.Exclusive && onlyAsks(svc)
	return Decision{Action: Hold, Holding: h, Err: err, Events: evs}
}

// onlyAsks reports whether svc carries none of the addresses it is in use
// on: neither our annotation (what kube-vip advertises) nor a status shows
// one, it only asks for them (spec.loadBalancerIP, another tool's request
// annotation). Two Services that only ask for one address stand on equal
// footing: neither may block the other for good, the oldest waiting one is
// granted it (see the engine's fairness).
func onlyAsks(svc *corev1.Service) bool {
	return svc.Annotations[AnnotationLoadBalancerIPs] == "" && len(svc.Status.LoadBalancer.Ingress) == 0
}

// keep validates the addresses svc already carries.
func keep(cfg *allocator.Config, usage *allocator.Usage, svc *corev1.Service, addrs []netip.Addr, src string) Decision {
	req := Request(svc, addrs)
	// Carried: in the annotation kube-vip advertises, or already served
	// (adopted from the status).
	req.Carries = svc.Annotations[AnnotationLoadBalancerIPs] != "" || src == srcStatus
	req.Granted = req.Carries && svc.Labels[LabelImplementation] == ImplementationKubeVIP
	res, err := usage.Allocate(cfg, req)
	if err != nil {
		// What kube-vip advertises (the annotation, else
		// spec.loadBalancerIP, and the status) stays in use: reported,
		// but never handed to a third Service; the Service that held it
		// first keeps it.
		return failed(svc, err, refusal(cfg, usage, svc, err, src))
	}
	d := Decision{Action: Hold, Holding: Holding(svc, res.Addrs)}
	// With a DHCP pool the real address comes from a DHCP server, so being
	// outside the (empty) pool is expected.
	dhcp := false
	if p := cfg.PoolFor(svc.Namespace); p != nil && p.DHCP() {
		dhcp = true
	}
	for _, a := range res.Addrs {
		outside := slices.Contains(res.Outside, a) && !a.IsUnspecified() && !dhcp
		anycast := slices.Contains(res.Anycast, a)
		if !outside && !anycast {
			continue
		}
		// The message names no source: once the annotation is filled in
		// from spec.loadBalancerIP, the same warning must read the same,
		// or it would be recorded again.
		var msg string
		if outside {
			where := fmt.Sprintf("the pool of %q", res.Pool)
			switch {
			case res.Pool == "" && cfg.Absent() != "":
				where = fmt.Sprintf("every pool (%s)", cfg.Absent())
			case res.Pool == "":
				where = fmt.Sprintf("every pool (namespace %q has none)", svc.Namespace)
			}
			msg = fmt.Sprintf("address %s is outside %s; it is kept", a, where)
		}
		if anycast {
			if msg != "" {
				msg += "; "
			}
			msg += anycastRisk(a)
		}
		d.Events = append(d.Events, Event{EventWarning, ReasonAddressOutsidePool, msg})
	}
	if src == srcAnnotation && svc.Labels[LabelImplementation] == ImplementationKubeVIP && svc.Labels[LabelLegacyIPAMAddress] == "" {
		return follow(cfg, usage, svc, d)
	}
	// As the existing provider: the annotation is filled in, the Service is
	// labelled as ours (so that a type change later removes both and frees
	// the address), and the annotation supersedes the legacy label.
	if svc.Annotations[AnnotationLoadBalancerIPs] == "" || svc.Labels[LabelImplementation] != ImplementationKubeVIP ||
		svc.Labels[LabelLegacyIPAMAddress] != "" {
		d.Action = Write
		d.Service = svc.DeepCopy()
		setAnnotation(d.Service, AnnotationLoadBalancerIPs, JoinAddrs(res.Addrs))
		setLabel(d.Service, LabelImplementation, ImplementationKubeVIP)
		delete(d.Service.Labels, LabelLegacyIPAMAddress)
		msg := fmt.Sprintf("assigned %s, as requested in %s", JoinAddrs(res.Addrs), src)
		if src == srcStatus {
			msg = fmt.Sprintf("assigned %s, adopted from %s", JoinAddrs(res.Addrs), src)
		}
		if (src == srcStatus || src != srcAnnotation && strings.HasPrefix(src, "annotation ")) && d.Service.Spec.LoadBalancerIP == "" {
			// Adopted, or asked for in another tool's annotation: the
			// first address goes to spec.loadBalancerIP too, as for one
			// this provider picks.
			d.Service.Spec.LoadBalancerIP = res.Addrs[0].String()
		}
		msg += sharing(usage, svc, res.Shared)
		d.Events = append([]Event{{EventNormal, ReasonAddressAssigned, msg}}, d.Events...)
	}
	return d
}

// srcAnnotation names addresses carried in our annotation.
const srcAnnotation = "annotation " + AnnotationLoadBalancerIPs

// sharing says which Services share the addresses shared, for a message:
// " (sharing 10.0.0.1 with ns/a, ns/b)", or "".
func sharing(usage *allocator.Usage, svc *corev1.Service, shared []netip.Addr) string {
	if len(shared) == 0 {
		return ""
	}
	var with []string
	for _, a := range shared {
		for _, o := range usage.Holders(a) {
			// One only served on a (contesting it, asking for it) does
			// not share it.
			if h, _ := usage.Holding(o); o != Key(svc) && slices.Contains(h.Addrs, a) && !h.Contested && !h.Releasing && !slices.Contains(with, o) {
				with = append(with, o)
			}
		}
	}
	return fmt.Sprintf(" (sharing %s with %s)", JoinAddrs(shared), strings.Join(with, ", "))
}

// follow keeps a Service this provider assigned in step with what it asks
// for now, on the decision d to hold what it carries: its ipFamilyPolicy
// (a family added, keeping the address it has, or one released), the
// spec.loadBalancerIP it wrote (the annotation's first address: kube-vip
// reads the annotation first), and the interface-<ns> key.
func follow(cfg *allocator.Config, usage *allocator.Usage, svc *corev1.Service, d Decision) Decision {
	addrs := slices.Clone(d.Holding.Addrs)
	if slices.ContainsFunc(addrs, netip.Addr.IsUnspecified) {
		return d // DHCP: the family is the marker's
	}
	out := svc.DeepCopy()
	var evs []Event
	policy := allocator.FamilyPolicy("")
	if svc.Spec.IPFamilyPolicy != nil {
		policy = allocator.FamilyPolicy(*svc.Spec.IPFamilyPolicy)
	}
	first := familyOf(addrs[0])
	if fams := Request(svc, nil).Families; len(fams) > 0 {
		first = fams[0]
	}
	switch policy {
	case "", allocator.SingleStack:
		if len(addrs) > 1 {
			kept := slices.DeleteFunc(slices.Clone(addrs), func(a netip.Addr) bool { return familyOf(a) != first })
			if len(kept) == 0 {
				kept = addrs[:1]
			}
			var gone []netip.Addr
			for _, a := range addrs {
				if !slices.Contains(kept, a) {
					gone = append(gone, a)
				}
			}
			addrs = kept
			evs = append(evs, Event{EventNormal, ReasonAddressReleased,
				fmt.Sprintf("ipFamilyPolicy %s: released %s, kept %s", allocator.SingleStack, JoinAddrs(gone), JoinAddrs(addrs))})
		}
	case allocator.PreferDualStack, allocator.RequireDualStack:
		if len(addrs) == 1 {
			other := allocator.IPv6
			if familyOf(addrs[0]) == allocator.IPv6 {
				other = allocator.IPv4
			}
			req := Request(svc, nil)
			req.Families, req.Policy = []allocator.Family{other}, allocator.SingleStack
			res, err := usage.Allocate(cfg, req)
			if err != nil {
				// It keeps what it has, waits for the family to free up
				// (or the pool to gain it), and is told why.
				d.Waits = true
				// Worded as when it was first assigned, so that it is not
				// recorded again on every decision.
				ev := Event{EventWarning, ReasonAllocationFailed, fmt.Sprintf("%s; ipFamilyPolicy %s: assigned %s only", err, policy, JoinAddrs(addrs))}
				if policy == allocator.RequireDualStack {
					ev.Message = fmt.Sprintf("%s; ipFamilyPolicy %s: keeps %s", err, policy, JoinAddrs(addrs))
				}
				d.Events = append(d.Events, ev)
				if policy == allocator.RequireDualStack {
					d.Err = err
				}
				break
			}
			addrs = append(addrs, res.Addrs...)
			if first == other {
				addrs[0], addrs[1] = addrs[1], addrs[0]
			}
			evs = append(evs, Event{EventNormal, ReasonAddressAssigned,
				fmt.Sprintf("ipFamilyPolicy %s: added %s from pool %q, kept %s%s", policy, JoinAddrs(res.Addrs), res.Pool,
					JoinAddrs(d.Holding.Addrs), sharing(usage, svc, res.Shared))})
		}
	}
	setAnnotation(out, AnnotationLoadBalancerIPs, JoinAddrs(addrs))
	if lbip := strings.TrimSpace(out.Spec.LoadBalancerIP); lbip != "" && lbip != addrs[0].String() {
		evs = append(evs, Event{EventNormal, ReasonAddressAssigned, fmt.Sprintf(
			"spec.loadBalancerIP set to %s, as %s says (it named %s; edit the annotation to move the Service)",
			addrs[0], AnnotationLoadBalancerIPs, lbip)})
		out.Spec.LoadBalancerIP = addrs[0].String()
	}
	if iface := cfg.Interface(svc.Namespace); iface != "" && out.Annotations[AnnotationServiceInterface] != iface {
		setAnnotation(out, AnnotationServiceInterface, iface)
	}
	if equality(svc, out) {
		return d
	}
	d.Action, d.Service = Write, out
	d.Holding = Holding(svc, addrs)
	d.Events = append(evs, d.Events...)
	return d
}

// equality reports whether the fields follow writes are the same in a and b.
func equality(a, b *corev1.Service) bool {
	return a.Annotations[AnnotationLoadBalancerIPs] == b.Annotations[AnnotationLoadBalancerIPs] &&
		a.Annotations[AnnotationServiceInterface] == b.Annotations[AnnotationServiceInterface] &&
		a.Spec.LoadBalancerIP == b.Spec.LoadBalancerIP
}

// familyOf returns a's family.
func familyOf(a netip.Addr) allocator.Family {
	if a.Is4() {
		return allocator.IPv4
	}
	return allocator.IPv6
}

// anycastRisk says why a requested IPv6 address whose low 64 bits are zero
// is risky: every router on its /64 answers it too.
func anycastRisk(a netip.Addr) string {
	return fmt.Sprintf("address %s is the Subnet-Router anycast address of %s (RFC 4291 2.6.1): routers on that link answer it too, so traffic may never reach the Service; never assigned automatically, it is kept as requested",
		a, netip.PrefixFrom(a, 64))
}

func setAnnotation(svc *corev1.Service, k, v string) {
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[k] = v
}

func setLabel(svc *corev1.Service, k, v string) {
	if svc.Labels == nil {
		svc.Labels = map[string]string{}
	}
	svc.Labels[k] = v
}

// stripped returns a copy of svc without the marks this provider writes
// (spec.loadBalancerIP too, when it names an address being released: it is
// free now, and would otherwise come back as a request), and without the
// finalizer the existing provider left.
func stripped(svc *corev1.Service) *corev1.Service {
	out := svc.DeepCopy()
	if ip, err := netip.ParseAddr(strings.TrimSpace(out.Spec.LoadBalancerIP)); err == nil {
		if released, _, err := Addresses(svc); err == nil && slices.Contains(released, ip.Unmap()) {
			out.Spec.LoadBalancerIP = ""
		}
	}
	delete(out.Annotations, AnnotationLoadBalancerIPs)
	delete(out.Annotations, AnnotationServiceInterface)
	delete(out.Labels, LabelImplementation)
	out.Finalizers = slices.DeleteFunc(out.Finalizers, func(f string) bool { return f == FinalizerLoadBalancerCleanup })
	return out
}

// Apply records the ledger side of d for the Service named key: Hold and
// Write record d.Holding, Fail and Release forget the Service (a Release
// with a write to make keeps its address reserved until Ledger.Written).
func (d Decision) Apply(u *allocator.Usage, key string) {
	switch d.Action {
	case Hold, Write:
		u.Assign(d.Holding)
	case Release:
		if d.Service != nil && len(d.Holding.Addrs) > 0 {
			u.Assign(d.Holding) // reserved until the write lands
		} else {
			u.Release(key)
		}
	case Fail:
		u.Release(key)
	}
}

// Landed reports whether svc, read from the API server, shows the write of
// d (a Write or a Release whose answer was lost): then its Events are due.
func (d Decision) Landed(svc *corev1.Service) bool {
	if d.Service == nil || svc == nil {
		return false
	}
	return svc.Annotations[AnnotationLoadBalancerIPs] == d.Service.Annotations[AnnotationLoadBalancerIPs] &&
		svc.Labels[LabelImplementation] == d.Service.Labels[LabelImplementation] &&
		svc.Labels[LabelLegacyIPAMAddress] == d.Service.Labels[LabelLegacyIPAMAddress] &&
		svc.Spec.LoadBalancerIP == d.Service.Spec.LoadBalancerIP &&
		slices.Equal(svc.Finalizers, d.Service.Finalizers)
}

// Rebuild computes the addresses in use from the Services themselves, the
// cluster being the only state: after a restart, the ledger. When two
// Services carry the same address incompatibly, one that carries it in the
// annotation (it was granted) wins over one that only asks for it in
// spec.loadBalancerIP (it may have been refused), then the older one wins.
// The others are returned as conflicts, keyed by Service.
func Rebuild(cfg *allocator.Config, services []*corev1.Service, o Options) (*allocator.Usage, map[string]Decision) {
	return RebuildClaimed(cfg, services, o, nil)
}

// RebuildClaimed is Rebuild when the API server's address claims are known:
// a Service that owns the claim of an address it carries (claimed holds
// their keys) held it first, and keeps it over an older one.
func RebuildClaimed(cfg *allocator.Config, services []*corev1.Service, o Options, claimed map[string]bool) (*allocator.Usage, map[string]Decision) {
	sorted := slices.Clone(services)
	// Claimed first, then granted (the annotation), then served (a
	// status), then asked.
	rank := func(s *corev1.Service) int {
		switch {
		case claimed[Key(s)]:
			return -1
		case s.Annotations[AnnotationLoadBalancerIPs] != "":
			return 0
		case len(s.Status.LoadBalancer.Ingress) > 0:
			return 1
		}
		return 2
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return strings.Compare(Key(a), Key(b)) < 0
	})
	u := allocator.NewUsage()
	conflicts := map[string]Decision{}
	for _, svc := range sorted {
		// Services that are no longer LoadBalancers but still carry our
		// marks keep their address reserved until the marks are removed.
		pendingRelease := !IsLoadBalancer(svc) && svc.Labels[LabelImplementation] == ImplementationKubeVIP
		if !IsLoadBalancer(svc) && !pendingRelease {
			continue
		}
		if addrs, _, _ := Addresses(svc); len(addrs) == 0 && len(InUse(svc)) == 0 {
			continue // carries nothing: nothing to rebuild
		}
		d := Decide(cfg, u, svc, o)
		switch {
		case d.Action == Write && d.Allocated:
			// Never here (it carries something), and never a new
			// address during a rebuild.
		case d.Action == Hold, d.Action == Write, d.Action == Release:
			d.Apply(u, Key(svc))
		}
		if d.Err != nil {
			conflicts[Key(svc)] = d
		}
	}
	return u, conflicts
}
