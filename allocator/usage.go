package allocator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/btree"
)

// Usage is the mutable record of which Service holds which addresses,
// cluster-wide. It answers "which address is free" in O(log n) by keeping
// the allocatable addresses in use as merged runs of keys in an ordered tree.
//
// A Usage is not safe for concurrent use; the controller guards it.
type Usage struct {
	owners map[string]*Holding
	// also holds, per owner, the twin that holds its Holding.Also.
	also   map[string]*Holding
	byAddr map[netip.Addr][]*Holding
	// runs holds, per family, the merged spans of allocatable keys in use.
	runs [2]*btree.BTreeG[span]
	// shareable holds the addresses whose every holder has ports: the only
	// ones that another Service could share.
	shareable *btree.BTreeG[netip.Addr]
}

// NewUsage returns an empty Usage.
func NewUsage() *Usage {
	u := &Usage{
		owners:    map[string]*Holding{},
		also:      map[string]*Holding{},
		byAddr:    map[netip.Addr][]*Holding{},
		shareable: btree.NewG(16, netip.Addr.Less),
	}
	for i := range u.runs {
		u.runs[i] = btree.NewG(16, func(a, b span) bool { return a.lo.less(b.lo) })
	}
	return u
}

// Assign records that h.Owner holds h.Addrs (and is served on h.Also),
// replacing whatever it held before. Invalid and duplicate addresses are
// dropped; IPv4-mapped IPv6 addresses are recorded as IPv4.
func (u *Usage) Assign(h Holding) {
	u.Release(h.Owner)
	c := &Holding{Owner: h.Owner, Namespace: h.Namespace, Ports: slices.Clone(h.Ports), Releasing: h.Releasing,
		Contested: h.Contested, Exclusive: h.Exclusive, OnlyAsks: h.OnlyAsks}
	c.Addrs = appendAddrs(nil, nil, h.Addrs)
	// The extra addresses are held by a contested twin of c: in use, but
	// yielding to a Service that carries them.
	e := &Holding{Owner: h.Owner, Namespace: h.Namespace, Ports: c.Ports, Contested: true, Exclusive: h.Exclusive, OnlyAsks: h.OnlyAsks}
	e.Addrs = appendAddrs(nil, c.Addrs, h.Also)
	if len(c.Addrs) == 0 && len(e.Addrs) == 0 {
		return
	}
	c.Also = e.Addrs
	u.owners[c.Owner] = c
	if len(e.Addrs) > 0 {
		u.also[c.Owner] = e
	}
	for _, hd := range []*Holding{c, e} {
		for _, a := range hd.Addrs {
			u.add(a, hd)
		}
	}
}

// appendAddrs appends to dst the valid addresses of as, unmapped, that
// neither dst nor skip holds yet.
func appendAddrs(dst, skip, as []netip.Addr) []netip.Addr {
	for _, a := range as {
		if !a.IsValid() {
			continue
		}
		a = a.Unmap().WithZone("")
		if !slices.Contains(dst, a) && !slices.Contains(skip, a) {
			dst = append(dst, a)
		}
	}
	return dst
}

// add records that h holds a.
func (u *Usage) add(a netip.Addr, h *Holding) {
	hs := u.byAddr[a]
	// Holders stay sorted by owner, so that which holder a conflict
	// names does not depend on the order of Assign calls.
	i, _ := slices.BinarySearchFunc(hs, h.Owner, func(h *Holding, o string) int { return strings.Compare(h.Owner, o) })
	u.byAddr[a] = slices.Insert(hs, i, h)
	if len(hs) == 0 && allocatable(a) {
		u.insertKey(familyOf(a).index(), keyOf(a))
	}
	u.updateShareable(a)
}

// Release forgets what owner holds; its addresses are free again unless
// another Service shares them.
func (u *Usage) Release(owner string) {
	c, ok := u.owners[owner]
	if !ok {
		return
	}
	delete(u.owners, owner)
	hds := []*Holding{c}
	if e, ok := u.also[owner]; ok {
		delete(u.also, owner)
		hds = append(hds, e)
	}
	for _, hd := range hds {
		for _, a := range hd.Addrs {
			hs := slices.DeleteFunc(u.byAddr[a], func(h *Holding) bool { return h == hd })
			if len(hs) == 0 {
				delete(u.byAddr, a)
				if allocatable(a) {
					u.removeKey(familyOf(a).index(), keyOf(a))
				}
			} else {
				u.byAddr[a] = hs
			}
			u.updateShareable(a)
		}
	}
}

// Holding returns what owner holds.
func (u *Usage) Holding(owner string) (Holding, bool) {
	c, ok := u.owners[owner]
	if !ok {
		return Holding{}, false
	}
	return Holding{Owner: c.Owner, Namespace: c.Namespace, Ports: slices.Clone(c.Ports), Addrs: slices.Clone(c.Addrs),
		Releasing: c.Releasing, Contested: c.Contested, Exclusive: c.Exclusive, OnlyAsks: c.OnlyAsks, Also: slices.Clone(c.Also)}, true
}

// Holders returns the owners holding a (or served on it), sorted.
func (u *Usage) Holders(a netip.Addr) []string {
	hs := u.byAddr[a.Unmap()]
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		if len(out) == 0 || out[len(out)-1] != h.Owner {
			out = append(out, h.Owner)
		}
	}
	return out
}

// Owners returns every owner that holds an address, sorted.
func (u *Usage) Owners() []string {
	out := make([]string, 0, len(u.owners))
	for o := range u.owners {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// Len returns how many owners hold addresses.
func (u *Usage) Len() int { return len(u.owners) }

// clone returns an independent copy of u.
func (u *Usage) clone() *Usage {
	c := NewUsage()
	for _, o := range u.Owners() {
		h, _ := u.Holding(o)
		c.Assign(h)
	}
	return c
}

func (u *Usage) updateShareable(a netip.Addr) {
	hs := u.byAddr[a]
	ok := len(hs) > 0
	for _, h := range hs {
		if len(h.Ports) == 0 || h.Releasing || h.Contested || h.Exclusive {
			ok = false
		}
	}
	if ok {
		u.shareable.ReplaceOrInsert(a)
	} else {
		u.shareable.Delete(a)
	}
}

// runAt returns the run of family i containing k.
func (u *Usage) runAt(i int, k key) (span, bool) {
	var s span
	found := false
	u.runs[i].DescendLessOrEqual(span{lo: k}, func(r span) bool {
		s, found = r, !r.hi.less(k)
		return false
	})
	return s, found
}

func (u *Usage) insertKey(i int, k key) {
	t := u.runs[i]
	if _, in := u.runAt(i, k); in {
		return
	}
	ns := span{k, k}
	t.DescendLessOrEqual(span{lo: k}, func(r span) bool {
		if n, ok := r.hi.next(); ok && n == k {
			t.Delete(r)
			ns.lo = r.lo
		}
		return false
	})
	if n, ok := k.next(); ok {
		if r, found := t.Get(span{lo: n}); found {
			t.Delete(r)
			ns.hi = r.hi
		}
	}
	t.ReplaceOrInsert(ns)
}

func (u *Usage) removeKey(i int, k key) {
	r, in := u.runAt(i, k)
	if !in {
		return
	}
	t := u.runs[i]
	t.Delete(r)
	if k != r.lo {
		p, _ := k.prev()
		t.ReplaceOrInsert(span{r.lo, p})
	}
	if k != r.hi {
		n, _ := k.next()
		t.ReplaceOrInsert(span{n, r.hi})
	}
}

// firstFree returns the lowest allocatable key of family i in pool p that is
// not in use.
func (u *Usage) firstFree(p *Pool, i int) (key, bool) {
	spans := p.spans[i]
	if len(spans) == 0 {
		return key{}, false
	}
	c := spans[0].lo
	for {
		j := p.spanAt(i, c)
		if j == len(spans) {
			return key{}, false
		}
		if c.less(spans[j].lo) {
			c = spans[j].lo
		}
		r, in := u.runAt(i, c)
		if !in {
			return c, true
		}
		n, ok := r.hi.next()
		if !ok {
			return key{}, false
		}
		c = n
	}
}

// lastFree returns the highest allocatable key of family i in pool p that
// is not in use.
func (u *Usage) lastFree(p *Pool, i int) (key, bool) {
	spans := p.spans[i]
	if len(spans) == 0 {
		return key{}, false
	}
	c := spans[len(spans)-1].hi
	for {
		// The last span whose lo <= c.
		j := p.spanAt(i, c)
		if j == len(spans) || c.less(spans[j].lo) {
			j--
		}
		if j < 0 {
			return key{}, false
		}
		if spans[j].hi.less(c) {
			c = spans[j].hi
		}
		r, in := u.runAt(i, c)
		if !in {
			return c, true
		}
		n, ok := r.lo.prev()
		if !ok {
			return key{}, false
		}
		c = n
	}
}

// Used returns how many allocatable addresses of family f in pool p are in
// use. It costs O(spans + runs in the pool), so it is meant for metrics.
func (u *Usage) Used(p *Pool, f Family) Count {
	i := f.index()
	var n Count
	for _, s := range p.spans[i] {
		start := span{lo: s.lo}
		if r, in := u.runAt(i, s.lo); in {
			start = r
		}
		u.runs[i].AscendGreaterOrEqual(start, func(r span) bool {
			if s.hi.less(r.lo) {
				return false
			}
			lo, hi := r.lo, r.hi
			if lo.less(s.lo) {
				lo = s.lo
			}
			if s.hi.less(hi) {
				hi = s.hi
			}
			n = n.Add(spanLen(lo, hi))
			return true
		})
	}
	return n
}

// free returns how many addresses of family f pool p can still hand out.
func (u *Usage) free(p *Pool, f Family) Count { return p.Size(f).Sub(u.Used(p, f)) }

// String summarises u for debugging.
func (u *Usage) String() string {
	return fmt.Sprintf("Usage{owners: %d, addresses: %d}", len(u.owners), len(u.byAddr))
}
