package allocator

import (
	"net/netip"
	"sort"

	"go4.org/netipx"
)

// GlobalPool is the name of the pool that serves every namespace without
// pool keys of its own.
const GlobalPool = "global"

// span is an inclusive range of keys of one family.
type span struct{ lo, hi key }

// Pool is an immutable set of addresses that Services of one namespace (or
// of every namespace, for the global pool) draw from.
type Pool struct {
	name string
	// dhcp: the pool is 0.0.0.0/32, so every Service gets 0.0.0.0 and
	// kube-vip asks a DHCP server for the real address.
	dhcp bool
	// invalid explains why a pool whose keys are all malformed has no
	// addresses; it is empty for a valid pool.
	invalid string
	set     *netipx.IPSet
	// spans holds, per family, the sorted disjoint allocatable key ranges.
	spans [2][]span
	size  [2]Count
	// has records, per family, whether the pool holds any address at all
	// (an IPv4 pool of only .0/.255 addresses has some, none allocatable).
	has [2]bool
}

// newPool freezes the addresses in set into a Pool.
func newPool(name string, set *netipx.IPSet) *Pool {
	p := &Pool{name: name, set: set}
	for _, r := range set.Ranges() {
		i := familyOf(r.From()).index()
		p.has[i] = true
		lo, hi, ok := spanOf(r.From(), r.To())
		if !ok {
			continue
		}
		s := p.spans[i]
		// IPv4 ranges separated only by .255/.0 addresses meet in key space.
		if n := len(s); n > 0 {
			if nx, ok := s[n-1].hi.next(); ok && nx == lo {
				s[n-1].hi = hi
				p.spans[i] = s
				continue
			}
		}
		p.spans[i] = append(s, span{lo, hi})
	}
	for i := range p.spans {
		for _, s := range p.spans[i] {
			p.size[i] = p.size[i].Add(spanLen(s.lo, s.hi))
		}
	}
	return p
}

// Name returns "global" or the namespace the pool belongs to.
func (p *Pool) Name() string { return p.name }

// DHCP reports whether the pool is the DHCP marker 0.0.0.0/32.
func (p *Pool) DHCP() bool { return p.dhcp }

// Contains reports whether a is one of the pool's addresses (including the
// IPv4 .0 and .255 addresses, and the IPv6 addresses whose low 64 bits are
// zero, that are never handed out automatically).
// An IPv4-mapped IPv6 address is looked up as the IPv4 address it maps.
func (p *Pool) Contains(a netip.Addr) bool { return p.set.Contains(a.Unmap()) }

// Ranges returns the pool's addresses as sorted, merged ranges.
func (p *Pool) Ranges() []netipx.IPRange { return p.set.Ranges() }

// Size returns how many addresses of family f automatic allocation can hand out.
func (p *Pool) Size(f Family) Count { return p.size[f.index()] }

// Has reports whether the pool has any address of family f (allocatable
// or not: a pool of only .0/.255 IPv4 addresses is exhausted from the start).
func (p *Pool) Has(f Family) bool { return p.has[f.index()] }

// spanAt returns the index of the first span of family i whose hi >= k.
func (p *Pool) spanAt(i int, k key) int {
	s := p.spans[i]
	return sort.Search(len(s), func(j int) bool { return !s[j].hi.less(k) })
}

// equal reports whether two pools hold the same addresses and mode.
func (p *Pool) equal(o *Pool) bool {
	if p.dhcp != o.dhcp || p.invalid != o.invalid {
		return false
	}
	a, b := p.set.Ranges(), o.set.Ranges()
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
