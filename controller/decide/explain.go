package decide

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// maxNamed is how many Services a refusal names before it counts the rest.
const maxNamed = 5

// refusal returns the message of the AllocationFailed Event for err, which
// refused svc what it asks for (src: where it asked, "" for an automatic
// allocation). It starts with the allocator's reason (the documented
// contract: PoolExhausted, NoPool, FamilyUnavailable, Conflict,
// InvalidRequest), then says who holds what it wanted and the way out.
// The same refusal in the same state reads the same (the Event memory
// de-duplicates by message).
func refusal(cfg *allocator.Config, usage *allocator.Usage, svc *corev1.Service, err error, src string) string {
	from := ""
	if src != "" {
		from = fmt.Sprintf(" (from %s)", src)
	}
	var ae *allocator.Error
	if !errors.As(err, &ae) {
		// A field that does not parse: the error names it.
		return fmt.Sprintf("%s: %s; fix or remove it", allocator.ReasonInvalidRequest, err)
	}
	msg := ae.Error() + from
	switch ae.Reason {
	case allocator.ReasonConflict:
		if ae.Detail == conflictReleasing {
			return msg // over by itself
		}
		way := fmt.Sprintf("; to resolve: ask for another address (or none) in %s, or free %s from %s", orRequest(src), ae.Addr, ae.Holder)
		if strings.HasPrefix(ae.Detail, "both use port") {
			way += ", or give the two Services ports that do not collide"
		}
		return msg + way
	case allocator.ReasonExhausted:
		return msg + exhausted(cfg, usage, ae)
	case allocator.ReasonNoPool:
		if cfg != nil && cfg.Absent() != "" {
			return msg + "; create it: the Service gets an address as soon as it has a pool"
		}
		if ae.Detail != "" {
			return msg + fmt.Sprintf("; fix %s (the InvalidConfig Event on the ConfigMap says what is wrong)", poolKeys(cfg, ae.Pool))
		}
		return msg + fmt.Sprintf("; add %s%s or %s%s (or %s%s / %s%s) to the ConfigMap; the Service gets an address as soon as one is there",
			allocator.KeyCIDRPrefix, svc.Namespace, allocator.KeyRangePrefix, svc.Namespace,
			allocator.KeyCIDRPrefix, allocator.GlobalPool, allocator.KeyRangePrefix, allocator.GlobalPool)
	case allocator.ReasonFamilyUnavailable:
		return msg + fmt.Sprintf("; add %s addresses to %s, or ask for a family the pool has (spec.ipFamilies, spec.ipFamilyPolicy)",
			ae.Family, poolKeys(cfg, ae.Pool))
	case allocator.ReasonInvalidRequest:
		return msg + fmt.Sprintf("; fix %s", orRequest(src))
	}
	return msg
}

// conflictReleasing is the allocator's detail of a conflict that ends by
// itself.
const conflictReleasing = "the holder is releasing it; retrying once it has"

// orRequest names where a request is made, for advice.
func orRequest(src string) string {
	if src == "" {
		return "the request"
	}
	return src
}

// poolKeys names the ConfigMap keys of the pool named name ("cidr-x or
// range-x" when neither is in force).
func poolKeys(cfg *allocator.Config, name string) string {
	var keys []string
	if cfg != nil {
		acc := cfg.Accepted()
		for _, k := range []string{allocator.KeyCIDRPrefix + name, allocator.KeyRangePrefix + name} {
			if _, ok := acc[k]; ok {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return allocator.KeyCIDRPrefix + name + " or " + allocator.KeyRangePrefix + name
	}
	return strings.Join(keys, " and ")
}

// exhausted says, for a pool with no free address of a family, how big it
// is and, when pools overlap it, which Services drawing from other pools
// hold its addresses; then the way out.
func exhausted(cfg *allocator.Config, usage *allocator.Usage, ae *allocator.Error) string {
	keys := poolKeys(cfg, ae.Pool)
	var pool *allocator.Pool
	if cfg != nil {
		for _, p := range cfg.Pools() {
			if p.Name() == ae.Pool {
				pool = p
			}
		}
	}
	if pool == nil || usage == nil {
		return fmt.Sprintf("; widen %s, or free an address: the Service gets one as soon as one frees up", keys)
	}
	msg := fmt.Sprintf("; %s gives %s %s addresses, all in use", keys, pool.Size(ae.Family), ae.Family)
	var others []string
	n := 0
	for _, o := range usage.Owners() {
		h, _ := usage.Holding(o)
		if p := cfg.PoolFor(h.Namespace); p != nil && p.Name() == ae.Pool {
			continue
		}
		var in []netip.Addr
		for _, a := range append(slices.Clone(h.Addrs), h.Also...) {
			if familyOf(a) == ae.Family && pool.Contains(a) && !slices.Contains(in, a) {
				in = append(in, a)
			}
		}
		if len(in) == 0 {
			continue
		}
		n++
		if len(others) < maxNamed {
			where := "no pool"
			if p := cfg.PoolFor(h.Namespace); p != nil {
				where = fmt.Sprintf("pool %q", p.Name())
			}
			others = append(others, fmt.Sprintf("%s (%s, %s)", o, JoinAddrs(in), where))
		}
	}
	if n > 0 {
		more := ""
		if n > len(others) {
			more = fmt.Sprintf(" and %d more", n-len(others))
		}
		msg += fmt.Sprintf(", some by Services of other pools that overlap it: %s%s", strings.Join(others, ", "), more)
	}
	return msg + fmt.Sprintf("; widen %s, or free an address: the Service gets one as soon as one frees up", keys)
}
