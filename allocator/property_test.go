package allocator

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go4.org/netipx"
	"pgregory.net/rapid"
)

// The model: pools are drawn from a small window of addresses that crosses
// several /24 boundaries (so .0 and .255 matter), at the bottom, in the
// middle or at the top of the address space, and every answer is compared
// with a brute-force walk of that window.
const window = 1024

// bases are window-aligned (/22, /118), so any prefix of 22 (118) bits or
// more around an address of the window stays inside it.
var bases = map[Family][]netip.Addr{
	IPv4: {netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.252.0")},
	IPv6: {netip.MustParseAddr("2001:db8::"), netip.MustParseAddr("::"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fc00")},
}

var v4base, v6base = bases[IPv4][0], bases[IPv6][0]

// nth returns base+i, for 0 <= i < window.
func nth(base netip.Addr, i int) netip.Addr {
	if base.Is4() {
		b := base.As4()
		u := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(i)
		return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
	}
	b := base.As16()
	lo := uint16(b[14])<<8 | uint16(b[15]) + uint16(i) // the window never carries out of the last 16 bits
	b[14], b[15] = byte(lo>>8), byte(lo)
	return netip.AddrFrom16(b)
}

// modelAllocatable states the rule independently of key.go: automatic
// allocation never hands out an IPv4 .0 or .255, nor an IPv6 address whose
// last 8 bytes are zero (the Subnet-Router anycast address of its /64, and
// ::).
func modelAllocatable(a netip.Addr) bool {
	if a.Is4() {
		last := a.As4()[3]
		return last != 0 && last != 255
	}
	b := a.As16()
	return [8]byte(b[8:]) != [8]byte{}
}

type modelPool struct {
	family  Family
	base    netip.Addr
	ranges  []string // entries of range-global
	cidrs   []string // entries of cidr-global
	skip    bool     // skip-end-ips-in-cidr
	members map[netip.Addr]bool
	order   []netip.Addr // allocatable members, ascending
}

func genFamily(t *rapid.T) Family { return rapid.SampledFrom([]Family{IPv4, IPv6}).Draw(t, "family") }

// genPool draws overlapping ranges and CIDRs of one family in one window.
func genPool(t *rapid.T, f Family) modelPool {
	m := modelPool{family: f, base: rapid.SampledFrom(bases[f]).Draw(t, "base"), members: map[netip.Addr]bool{}}
	m.skip = rapid.Bool().Draw(t, "skip")
	add := func(from, to netip.Addr) {
		for a := from; ; a = a.Next() {
			m.members[a] = true
			if a == to {
				break
			}
		}
	}
	n := rapid.IntRange(1, 6).Draw(t, "entries")
	for i := 0; i < n; i++ {
		lo := rapid.IntRange(0, window-1).Draw(t, "lo")
		if rapid.IntRange(0, 2).Draw(t, "kind") == 0 {
			bits := rapid.IntRange(22, 32).Draw(t, "bits")
			if f == IPv6 {
				bits += 96
			}
			p := netip.PrefixFrom(nth(m.base, lo), bits) // not masked: Parse must mask it
			if p.Masked() == dhcpMarker {
				bits-- // 0.0.0.0/32 is the DHCP marker, which takes no company
				p = netip.PrefixFrom(nth(m.base, lo), bits)
			}
			m.cidrs = append(m.cidrs, p.String())
			r := netipx.RangeOfPrefix(p.Masked())
			from, to := r.From(), r.To()
			if m.skip && f == IPv4 && bits <= 30 {
				from, to = from.Next(), to.Prev()
			}
			add(from, to)
			continue
		}
		hi := rapid.IntRange(lo, min(window-1, lo+rapid.IntRange(0, 300).Draw(t, "len"))).Draw(t, "hi")
		if nth(m.base, hi) == netip.IPv4Unspecified() {
			hi++ // 0.0.0.0-0.0.0.0 is malformed: DHCP is 0.0.0.0/32
		}
		m.ranges = append(m.ranges, nth(m.base, lo).String()+"-"+nth(m.base, hi).String())
		add(nth(m.base, lo), nth(m.base, hi))
	}
	for a := range m.members {
		if modelAllocatable(a) {
			m.order = append(m.order, a)
		}
	}
	slices.SortFunc(m.order, netip.Addr.Compare)
	return m
}

// data returns the pool as ConfigMap data for namespace ns ("global" for
// every namespace), plus extra keys.
func (m modelPool) data(ns string, extra map[string]string) map[string]string {
	d := map[string]string{}
	if len(m.ranges) > 0 {
		d[KeyRangePrefix+ns] = strings.Join(m.ranges, ", ")
	}
	if len(m.cidrs) > 0 {
		d[KeyCIDRPrefix+ns] = strings.Join(m.cidrs, ",")
	}
	if m.skip {
		d[KeySkipEndIPs] = "true"
	}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

func (m modelPool) config(t *rapid.T, extra map[string]string) *Config {
	cfg, err := Parse(m.data(GlobalPool, extra), nil)
	if err != nil {
		t.Fatalf("Parse(%v): %v", m.data(GlobalPool, extra), err)
	}
	return cfg
}

// mixed returns the data of pools of both families for namespace ns; only
// an IPv4 pool says whether to skip the ends of CIDRs (IPv6 ones never are).
func mixed(ns string, ms ...modelPool) map[string]string {
	d := map[string]string{}
	for _, m := range ms {
		for k, v := range m.data(ns, nil) {
			if k == KeySkipEndIPs {
				if m.family == IPv4 {
					d[k] = v
				}
				continue
			}
			if old, ok := d[k]; ok {
				v = old + "," + v
			}
			d[k] = v
		}
	}
	return d
}

// genAddr draws an address of the window: in the pool or not, allocatable
// or not.
func (m modelPool) genAddr(t *rapid.T, label string) netip.Addr {
	return nth(m.base, rapid.IntRange(0, window-1).Draw(t, label))
}

func TestPropertyMergingOverlappingEntriesEqualsAddingOneByOne(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t, genFamily(t))
		p := m.config(t, nil).PoolFor("x")
		var b netipx.IPSetBuilder
		for a := range m.members {
			b.Add(a)
		}
		want, _ := b.IPSet()
		if got := p.Ranges(); !slices.Equal(got, want.Ranges()) {
			t.Fatalf("merged %v, one by one %v", got, want.Ranges())
		}
		if p.Size(m.family) != countOf(uint64(len(m.order))) {
			t.Fatalf("size %v, brute force %d", p.Size(m.family), len(m.order))
		}
		for i := 0; i < window; i++ {
			if a := nth(m.base, i); p.Contains(a) != m.members[a] {
				t.Fatalf("Contains(%s) = %v, brute force %v", a, p.Contains(a), m.members[a])
			}
		}
	})
}

func TestPropertyExhaustionHandsOutEveryAllocatableAddressOnceInOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t, genFamily(t))
		desc := rapid.Bool().Draw(t, "desc")
		extra := map[string]string{}
		want := slices.Clone(m.order)
		if desc {
			extra[KeySearchOrder] = "desc"
			slices.Reverse(want)
		}
		cfg := m.config(t, extra)
		p := cfg.PoolFor("ns")
		u := NewUsage()
		for i, w := range want {
			owner := fmt.Sprint("ns/", i)
			res, err := u.Allocate(cfg, Request{Owner: owner, Namespace: "ns", Families: []Family{m.family}})
			if err != nil {
				t.Fatalf("allocation %d of %d: %v", i, len(want), err)
			}
			if got := res.Addrs[0]; got != w {
				t.Fatalf("allocation %d = %s, want %s", i, got, w)
			}
			u.Assign(Holding{Owner: owner, Namespace: "ns", Addrs: res.Addrs})
			if got := u.Used(p, m.family); got != countOf(uint64(i+1)) {
				t.Fatalf("after %d allocations used = %v", i+1, got)
			}
		}
		_, err := u.Allocate(cfg, Request{Owner: "ns/last", Namespace: "ns", Families: []Family{m.family}})
		var ae *Error
		if !errors.As(err, &ae) || ae.Reason != ReasonExhausted {
			t.Fatalf("after %d allocations: %v, want PoolExhausted", len(want), err)
		}
	})
}

// TestPropertyRunTreeMatchesNaiveModel drives random Assign/Release
// sequences (several addresses per owner, shared addresses, addresses
// outside the pool, .0/.255 and ::) and compares the lowest and highest free
// address, Used and Holders with a naive map of who holds what.
func TestPropertyRunTreeMatchesNaiveModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t, genFamily(t))
		asc := m.config(t, nil)
		desc := m.config(t, map[string]string{KeySearchOrder: "desc"})
		p := asc.PoolFor("x")
		u := NewUsage()
		held := map[string][]netip.Addr{}
		for step := 0; step < 50; step++ {
			owner := fmt.Sprint("ns/", rapid.IntRange(0, 15).Draw(t, "owner"))
			if rapid.IntRange(0, 3).Draw(t, "op") == 0 {
				u.Release(owner)
				delete(held, owner)
			} else {
				as := []netip.Addr{m.genAddr(t, "addr")}
				if rapid.Bool().Draw(t, "more") {
					as = append(as, m.genAddr(t, "addr"), m.genAddr(t, "addr"))
				}
				u.Assign(Holding{Owner: owner, Namespace: "ns", Addrs: as})
				held[owner] = as
			}
			inUse := map[netip.Addr][]string{}
			for o, as := range held {
				for _, a := range as {
					if !slices.Contains(inUse[a], o) {
						inUse[a] = append(inUse[a], o)
					}
				}
			}
			var first, last netip.Addr
			used := 0
			for _, a := range m.order {
				if len(inUse[a]) > 0 {
					used++
					continue
				}
				if !first.IsValid() {
					first = a
				}
				last = a
			}
			for cfg, want := range map[*Config]netip.Addr{asc: first, desc: last} {
				res, err := u.Allocate(cfg, Request{Owner: "ns/probe", Namespace: "ns", Families: []Family{m.family}})
				switch {
				case !want.IsValid() && err == nil:
					t.Fatalf("step %d (desc %v): got %v, model says exhausted", step, cfg.descending(), res.Addrs)
				case want.IsValid() && (err != nil || res.Addrs[0] != want):
					t.Fatalf("step %d (desc %v): got %v %v, model says %s", step, cfg.descending(), res.Addrs, err, want)
				}
			}
			if got := u.Used(p, m.family); got != countOf(uint64(used)) {
				t.Fatalf("step %d: used %v, model %d", step, got, used)
			}
			for a, os := range inUse {
				slices.Sort(os)
				if got := u.Holders(a); !slices.Equal(got, os) {
					t.Fatalf("step %d: holders of %s = %v, model %v", step, a, got, os)
				}
			}
			if u.Len() != len(held) {
				t.Fatalf("step %d: Len %d, model %d", step, u.Len(), len(held))
			}
		}
	})
}

func TestPropertyFreePlusUsedIsSize(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m4, m6 := genPool(t, IPv4), genPool(t, IPv6)
		cfg, err := Parse(mixed(GlobalPool, m4, m6), nil)
		if err != nil {
			t.Fatal(err)
		}
		p := cfg.PoolFor("ns")
		u := NewUsage()
		for i, n := 0, rapid.IntRange(0, 80).Draw(t, "holdings"); i < n; i++ {
			m := m4
			if rapid.Bool().Draw(t, "v6") {
				m = m6
			}
			u.Assign(Holding{Owner: fmt.Sprint("ns/", rapid.IntRange(0, 40).Draw(t, "owner")), Addrs: []netip.Addr{m.genAddr(t, "addr")}})
		}
		for _, f := range []Family{IPv4, IPv6} {
			if got := u.Used(p, f).Add(u.free(p, f)); got != p.Size(f) {
				t.Fatalf("%v: used %v + free %v = %v, size %v", f, u.Used(p, f), u.free(p, f), got, p.Size(f))
			}
		}
		if p.Size(IPv4) != countOf(uint64(len(m4.order))) || p.Size(IPv6) != countOf(uint64(len(m6.order))) {
			t.Fatalf("sizes %v %v, model %d %d", p.Size(IPv4), p.Size(IPv6), len(m4.order), len(m6.order))
		}
	})
}

// sharingWorld is a config with three namespaces drawing from one global
// pool, each allowed to share or not.
type sharingWorld struct {
	m     modelPool
	cfg   *Config
	share map[string]bool
}

func genSharingWorld(t *rapid.T) sharingWorld {
	w := sharingWorld{m: genPool(t, genFamily(t)), share: map[string]bool{}}
	extra := map[string]string{}
	global := rapid.Bool().Draw(t, "share-global")
	extra[KeyAllowSharePrefix+GlobalPool] = fmt.Sprint(global)
	for _, ns := range []string{"a", "b", "c"} {
		w.share[ns] = global
		if rapid.Bool().Draw(t, "own-share-key") {
			w.share[ns] = rapid.Bool().Draw(t, "share-"+ns)
			extra[KeyAllowSharePrefix+ns] = fmt.Sprint(w.share[ns])
		}
	}
	w.cfg = w.m.config(t, extra)
	return w
}

func genPorts(t *rapid.T) []Port {
	var ps []Port
	for _, n := range rapid.SliceOfNDistinct(rapid.IntRange(1, 4), 0, 3, rapid.ID[int]).Draw(t, "ports") {
		ps = append(ps, Port{Number: int32(n), Protocol: rapid.SampledFrom([]string{"TCP", "UDP"}).Draw(t, "protocol")})
	}
	return ps
}

// modelCompatible states when two Services may hold one address.
func modelCompatible(a, b []Port) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, p := range a {
		for _, q := range b {
			if p.Number == q.Number && p.Protocol == q.Protocol {
				return false
			}
		}
	}
	return true
}

// TestPropertyNeverSharesWithAnIncompatibleService lets Services of three
// namespaces ask for addresses, automatically or by name, and checks every
// answer against the sharing rules.
func TestPropertyNeverSharesWithAnIncompatibleService(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genSharingWorld(t)
		p := w.cfg.PoolFor("a")
		u := NewUsage()
		holdings := map[string]Holding{}
		for i := 0; i < 30; i++ {
			ns := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "ns")
			req := Request{Owner: fmt.Sprint(ns, "/", i), Namespace: ns, Families: []Family{w.m.family}, Ports: genPorts(t)}
			requested := rapid.IntRange(0, 3).Draw(t, "requested") == 0
			if requested {
				req.Requested = []netip.Addr{w.m.genAddr(t, "addr")}
			}
			res, err := u.Allocate(w.cfg, req)
			var incompatible []string // holders req may not join
			// 0.0.0.0 (and ::) asks for DHCP: every such Service holds
			// it, none conflicts, nor is it outside or shared.
			dhcp := requested && req.Requested[0].IsUnspecified()
			if requested && !dhcp {
				for _, o := range u.Holders(req.Requested[0]) {
					if !modelCompatible(holdings[o].Ports, req.Ports) {
						incompatible = append(incompatible, o)
					}
				}
				var ae *Error
				switch {
				case len(incompatible) > 0 && (!errors.As(err, &ae) || ae.Reason != ReasonConflict || !slices.Contains(incompatible, ae.Holder)):
					t.Fatalf("%s asked for %s held by incompatible %v: got %v %v, want a conflict naming one", req.Owner, req.Requested[0], incompatible, res, err)
				case len(incompatible) == 0 && err != nil:
					t.Fatalf("%s asked for %s (holders %v): %v", req.Owner, req.Requested[0], u.Holders(req.Requested[0]), err)
				}
				if err != nil {
					continue
				}
				if outside := len(res.Outside) == 1; outside != (!p.Contains(req.Requested[0]) && !dhcp) {
					t.Fatalf("%s: outside %v, but Contains says %v", req.Requested[0], res.Outside, p.Contains(req.Requested[0]))
				}
			} else if err != nil {
				var ae *Error
				if !errors.As(err, &ae) || ae.Reason != ReasonExhausted {
					t.Fatalf("automatic allocation failed with %v", err)
				}
				continue
			}
			a := res.Addrs[0]
			holders := u.Holders(a)
			if !requested {
				if !p.Contains(a) || !modelAllocatable(a) {
					t.Fatalf("%s is outside the pool or not allocatable", a)
				}
				if len(holders) > 0 && !w.share[ns] {
					t.Fatalf("%s shares %s with %v though %s may not share", req.Owner, a, holders, ns)
				}
				for _, o := range holders {
					h := holdings[o]
					if !w.share[h.Namespace] || !modelCompatible(h.Ports, req.Ports) {
						t.Fatalf("%s (ports %v) given %s held by %s (ports %v, may share %v)", req.Owner, req.Ports, a, o, h.Ports, w.share[h.Namespace])
					}
				}
			}
			if (len(res.Shared) > 0) != (len(holders) > 0 && !dhcp) {
				t.Fatalf("%s: shared %v but holders %v", a, res.Shared, holders)
			}
			h := Holding{Owner: req.Owner, Namespace: ns, Ports: req.Ports, Addrs: res.Addrs}
			u.Assign(h)
			holdings[req.Owner] = h
		}
	})
}

// TestPropertyShareablesAreSharedLowestFirst: when the namespace may share,
// the answer is the lowest allocatable address of the pool that every
// holder may share with the requester; else the lowest free address.
func TestPropertyShareablesAreSharedLowestFirst(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genSharingWorld(t)
		u := NewUsage()
		holdings := map[string]Holding{}
		for i, n := 0, rapid.IntRange(0, 25).Draw(t, "holdings"); i < n; i++ {
			ns := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "ns")
			h := Holding{Owner: fmt.Sprint(ns, "/", i), Namespace: ns, Ports: genPorts(t), Addrs: []netip.Addr{w.m.genAddr(t, "addr")}}
			u.Assign(h)
			holdings[h.Owner] = h
		}
		ns := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "ns")
		req := Request{Owner: ns + "/q", Namespace: ns, Ports: genPorts(t), Families: []Family{w.m.family}}
		var want netip.Addr
		if w.share[ns] && len(req.Ports) > 0 {
			for _, a := range w.m.order {
				hs := u.Holders(a)
				ok := len(hs) > 0
				for _, o := range hs {
					ok = ok && w.share[holdings[o].Namespace] && modelCompatible(holdings[o].Ports, req.Ports)
				}
				if ok {
					want = a
					break
				}
			}
		}
		if !want.IsValid() {
			for _, a := range w.m.order {
				if len(u.Holders(a)) == 0 {
					want = a
					break
				}
			}
		}
		res, err := u.Allocate(w.cfg, req)
		if !want.IsValid() {
			if err == nil {
				t.Fatalf("got %v, model says exhausted", res.Addrs)
			}
			return
		}
		if err != nil || res.Addrs[0] != want {
			t.Fatalf("got %v %v, model %s", res.Addrs, err, want)
		}
	})
}

// TestPropertyAutomaticAddressesAreInThePoolOnePerFamily asks a mixed pool
// for every combination of families and policy.
func TestPropertyAutomaticAddressesAreInThePoolOnePerFamily(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pools := map[Family]modelPool{}
		var ms []modelPool
		for _, f := range []Family{IPv4, IPv6} {
			if rapid.Bool().Draw(t, "has-"+f.String()) {
				pools[f] = genPool(t, f)
				ms = append(ms, pools[f])
			}
		}
		cfg, err := Parse(mixed("a", ms...), nil)
		if err != nil {
			t.Fatal(err)
		}
		u := NewUsage()
		for i := 0; i < 20; i++ {
			req := Request{Owner: fmt.Sprint("a/", i), Namespace: "a",
				Families: rapid.SliceOfNDistinct(rapid.SampledFrom([]Family{IPv4, IPv6}), 0, 2, rapid.ID[Family]).Draw(t, "families"),
				Policy:   rapid.SampledFrom([]FamilyPolicy{"", SingleStack, PreferDualStack, RequireDualStack}).Draw(t, "policy")}
			res, err := u.Allocate(cfg, req)
			if len(pools) == 0 {
				var ae *Error
				if !errors.As(err, &ae) || ae.Reason != ReasonNoPool {
					t.Fatalf("no pool: got %v %v, want NoPool", res, err)
				}
				return
			}
			if err != nil {
				continue
			}
			var fams []Family
			for _, a := range res.Addrs {
				f := familyOf(a)
				m, ok := pools[f]
				if !ok || !m.members[a] || !modelAllocatable(a) {
					t.Fatalf("%v: %s is not an allocatable address of the pool", req, a)
				}
				if slices.Contains(fams, f) {
					t.Fatalf("%v: two %v addresses in %v", req, f, res.Addrs)
				}
				fams = append(fams, f)
				if len(u.Holders(a)) > 0 {
					t.Fatalf("%v: %s is in use (no sharing here)", req, a)
				}
			}
			switch req.Policy {
			case "", SingleStack:
				if len(fams) != 1 || (len(req.Families) > 0 && fams[0] != req.Families[0]) {
					t.Fatalf("%v: single-stack answer %v", req, res.Addrs)
				}
			case RequireDualStack:
				if len(fams) != 2 {
					t.Fatalf("%v: dual-stack answer %v", req, res.Addrs)
				}
			}
			if len(fams) == 2 && len(req.Families) > 0 && fams[0] != req.Families[0] {
				t.Fatalf("%v: answer %v not in request order", req, res.Addrs)
			}
			u.Assign(Holding{Owner: req.Owner, Namespace: "a", Addrs: res.Addrs})
		}
	})
}

func TestPropertyParseOfDataIsEqual(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t, genFamily(t))
		other := genPool(t, genFamily(t))
		extra := map[string]string{
			"allow-share-global": fmt.Sprint(rapid.Bool().Draw(t, "share")),
			"interface-x":        rapid.SampledFrom([]string{"eth0", "bond0.100", "enp3s0f1"}).Draw(t, "iface"),
		}
		for k, v := range other.data("other", nil) {
			if k != KeySkipEndIPs {
				extra[k] = v
			}
		}
		if rapid.Bool().Draw(t, "dhcp") {
			extra["cidr-dhcp"] = "0.0.0.0/32"
		}
		if rapid.Bool().Draw(t, "desc") {
			extra[KeySearchOrder] = "desc"
		}
		cfg := m.config(t, extra)
		again, err := Parse(cfg.data(), nil)
		if err != nil || !again.equal(cfg) {
			t.Fatalf("Parse(data()) = %v, %v; data %v", again.data(), err, cfg.data())
		}
		if !sameData(again.data(), cfg.data()) {
			t.Fatalf("data() is not canonical: %v then %v", cfg.data(), again.data())
		}
	})
}

func sameData(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestPropertyAnswersAreDeterministic: the answer depends on what is held,
// not on the order it was assigned in, nor on Clone, nor on earlier calls.
func TestPropertyAnswersAreDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genSharingWorld(t)
		var hs []Holding
		for i, n := 0, rapid.IntRange(0, 30).Draw(t, "holdings"); i < n; i++ {
			ns := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "ns")
			hs = append(hs, Holding{Owner: fmt.Sprint(ns, "/", i), Namespace: ns, Ports: genPorts(t), Addrs: []netip.Addr{w.m.genAddr(t, "addr")}})
		}
		build := func(hs []Holding) *Usage {
			u := NewUsage()
			for _, h := range hs {
				u.Assign(h)
			}
			return u
		}
		u := build(hs)
		shuffled := build(rapid.Permutation(hs).Draw(t, "order"))
		req := Request{Owner: "a/q", Namespace: rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "ns"), Ports: genPorts(t), Families: []Family{w.m.family}}
		if rapid.Bool().Draw(t, "requested") {
			req.Requested = []netip.Addr{w.m.genAddr(t, "addr")}
		}
		answer := func(u *Usage) string {
			res, err := u.Allocate(w.cfg, req)
			return fmt.Sprintf("%v %v", res, err)
		}
		want := answer(u)
		for name, v := range map[string]*Usage{"again": u, "clone": u.clone(), "shuffled": shuffled} {
			if got := answer(v); got != want {
				t.Fatalf("%s: %s, first answer %s", name, got, want)
			}
		}
	})
}

// TestPropertyAllocateChangesNothing: Allocate only answers.
func TestPropertyAllocateChangesNothing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genSharingWorld(t)
		u := NewUsage()
		for i, n := 0, rapid.IntRange(0, 20).Draw(t, "holdings"); i < n; i++ {
			u.Assign(Holding{Owner: fmt.Sprint("a/", i), Namespace: "a", Ports: genPorts(t), Addrs: []netip.Addr{w.m.genAddr(t, "addr")}})
		}
		p := w.cfg.PoolFor("a")
		snapshot := func() string {
			var b strings.Builder
			for _, o := range u.Owners() {
				h, _ := u.Holding(o)
				fmt.Fprintln(&b, h)
			}
			fmt.Fprintln(&b, u.Used(p, w.m.family))
			return b.String()
		}
		before := snapshot()
		for i := 0; i < 5; i++ {
			req := Request{Owner: fmt.Sprint("b/", i), Namespace: "b", Ports: genPorts(t), Families: []Family{w.m.family}}
			if rapid.Bool().Draw(t, "requested") {
				req.Requested = []netip.Addr{w.m.genAddr(t, "addr")}
			}
			_, _ = u.Allocate(w.cfg, req)
		}
		if after := snapshot(); after != before {
			t.Fatalf("Allocate changed the usage:\n%s\nbecame\n%s", before, after)
		}
	})
}

// TestPropertyKeyOrderMatchesAddressOrder: keys number the allocatable IPv4
// addresses without gaps, in address order, and map back to them.
func TestPropertyKeyOrderMatchesAddressOrder(t *testing.T) {
	v4 := rapid.Custom(func(t *rapid.T) netip.Addr {
		for {
			u := rapid.Uint32().Draw(t, "addr")
			a := netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
			if modelAllocatable(a) {
				return a
			}
		}
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b := v4.Draw(t, "a"), v4.Draw(t, "b")
		for _, x := range []netip.Addr{a, b} {
			if got := addrOf(IPv4, keyOf(x)); got != x {
				t.Fatalf("addrOf(keyOf(%s)) = %s", x, got)
			}
		}
		if a.Compare(b) != keyOf(a).cmp(keyOf(b)) {
			t.Fatalf("%s vs %s: keys %v %v in another order", a, b, keyOf(a), keyOf(b))
		}
		next := a.Next()
		for next.IsValid() && !modelAllocatable(next) {
			next = next.Next()
		}
		if next.IsValid() {
			if k, _ := keyOf(a).next(); k != keyOf(next) {
				t.Fatalf("the next allocatable address after %s is %s, but its key is not the next key", a, next)
			}
		}
		// IPv6: any high half (the edges included), a low half that is
		// not zero; the order and the adjacency across a /64 boundary too.
		hi := rapid.OneOf(rapid.Uint64(), rapid.SampledFrom([]uint64{0, 1, math.MaxUint64 - 1, math.MaxUint64})).Draw(t, "v6hi")
		lo := rapid.OneOf(rapid.Uint64Min(1), rapid.SampledFrom([]uint64{1, 2, math.MaxUint64 - 1, math.MaxUint64})).Draw(t, "v6lo")
		x := v6addr(hi, lo)
		if got := addrOf(IPv6, keyOf(x)); got != x {
			t.Fatalf("addrOf(keyOf(%s)) = %s", x, got)
		}
		y := v6addr(rapid.Uint64().Draw(t, "v6hi2"), rapid.Uint64Min(1).Draw(t, "v6lo2"))
		if x.Compare(y) != keyOf(x).cmp(keyOf(y)) {
			t.Fatalf("%s vs %s: keys %v %v in another order", x, y, keyOf(x), keyOf(y))
		}
		next = x.Next()
		for next.IsValid() && !modelAllocatable(next) {
			next = next.Next()
		}
		if next.IsValid() {
			if k, _ := keyOf(x).next(); k != keyOf(next) {
				t.Fatalf("the next allocatable address after %s is %s, but its key is not the next key", x, next)
			}
		}
	})
}

// v6addr returns the IPv6 address of the given high and low 64 bits.
func v6addr(hi, lo uint64) netip.Addr {
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i], b[8+i] = byte(hi>>(56-8*i)), byte(lo>>(56-8*i))
	}
	return netip.AddrFrom16(b)
}

// TestPropertyBadKeyInvalidatesOnlyItself corrupts one key of a good
// config: alone, only that key is lost; with the good config as last,
// nothing is.
func TestPropertyBadKeyInvalidatesOnlyItself(t *testing.T) {
	bad := []string{"10.0.0.300/24", "10.0.0.9-10.0.0.1", "10.0.0.1", "2001:db8::/129", "banana", "10.0.0.1-2001:db8::1"}
	rapid.Check(t, func(t *rapid.T) {
		data := map[string]string{}
		for _, ns := range []string{GlobalPool, "a", "b"} {
			for k, v := range genPool(t, genFamily(t)).data(ns, nil) {
				if k != KeySkipEndIPs {
					data[k] = v
				}
			}
		}
		good, err := Parse(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		victim := rapid.SampledFrom(keys).Draw(t, "victim")
		broken := map[string]string{}
		for k, v := range data {
			broken[k] = v
		}
		entry := rapid.SampledFrom(bad).Draw(t, "bad")
		broken[victim] = data[victim] + "," + entry

		cfg, err := Parse(broken, nil)
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != victim || ke.Value != broken[victim] || ke.Kept != nil {
			t.Fatalf("err = %v, want one KeyError for %s", err, victim)
		}
		if ke.Entry != entry {
			t.Fatalf("KeyError blames %q, want %q", ke.Entry, entry)
		}
		for _, gp := range good.Pools() {
			p := cfg.PoolFor(gp.Name())
			var other string // the namespace's other pool key
			if strings.HasPrefix(victim, KeyCIDRPrefix) {
				other = KeyRangePrefix + victim[len(KeyCIDRPrefix):]
			} else {
				other = KeyCIDRPrefix + victim[len(KeyRangePrefix):]
			}
			switch {
			case !strings.HasSuffix(victim, "-"+gp.Name()):
				if !p.equal(gp) {
					t.Fatalf("pool %s changed: %s, was %s", gp.Name(), rangesOf(p), rangesOf(gp))
				}
			case data[other] == "":
				if p.Name() != gp.Name() || p.invalid == "" || p.Has(IPv4) || p.Has(IPv6) {
					t.Fatalf("pool %s of only a bad key: %s (invalid %q)", gp.Name(), rangesOf(p), p.invalid)
				}
			default:
				only, _ := Parse(map[string]string{other: data[other]}, nil)
				if !p.equal(only.PoolFor(gp.Name())) {
					t.Fatalf("pool %s = %s, want only its good key %s", gp.Name(), rangesOf(p), other)
				}
			}
		}

		kept, err := Parse(broken, good)
		if !errors.As(err, &ke) || ke.Kept == nil || *ke.Kept != data[victim] {
			t.Fatalf("with last: err = %v, want the last good value kept", err)
		}
		if !kept.equal(good) {
			t.Fatalf("with last: %v, want %v", kept.data(), good.data())
		}
	})
}
