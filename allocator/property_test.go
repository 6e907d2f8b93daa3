package allocator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go4.org/netipx"
	"pgregory.net/rapid"
)

// The model: pools are drawn from a small window of addresses that crosses
// several /24 boundaries (so .0 and .255 matter), and every answer is
// compared with a brute-force walk of that window.
const window = 1024

var v4base = netip.MustParseAddr("10.0.0.0")
var v6base = netip.MustParseAddr("2001:db8::")

func nth(base netip.Addr, i int) netip.Addr {
	a := base
	for ; i > 0; i-- {
		a = a.Next()
	}
	return a
}

type modelPool struct {
	family  Family
	entries []string
	members map[netip.Addr]bool
	order   []netip.Addr // allocatable members, ascending
}

func genPool(t *rapid.T) modelPool {
	f := rapid.SampledFrom([]Family{IPv4, IPv6}).Draw(t, "family")
	base := v4base
	if f == IPv6 {
		base = v6base
	}
	m := modelPool{family: f, members: map[netip.Addr]bool{}}
	n := rapid.IntRange(1, 6).Draw(t, "ranges")
	for i := 0; i < n; i++ {
		lo := rapid.IntRange(0, window-1).Draw(t, "lo")
		hi := rapid.IntRange(lo, min(window-1, lo+rapid.IntRange(0, 300).Draw(t, "len"))).Draw(t, "hi")
		from, to := nth(base, lo), nth(base, hi)
		m.entries = append(m.entries, from.String()+"-"+to.String())
		for a := from; ; a = a.Next() {
			m.members[a] = true
			if a == to {
				break
			}
		}
	}
	for a := range m.members {
		if allocatable(a) {
			m.order = append(m.order, a)
		}
	}
	slices.SortFunc(m.order, netip.Addr.Compare)
	return m
}

func (m modelPool) config(extra map[string]string) map[string]string {
	d := map[string]string{"range-global": strings.Join(m.entries, ",")}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

func TestPropertyMergingEqualsAddingOneByOne(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t)
		cfg, err := Parse(m.config(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		var b netipx.IPSetBuilder
		for a := range m.members {
			b.Add(a)
		}
		want, _ := b.IPSet()
		p := cfg.PoolFor("x")
		if got := p.Ranges(); !slices.Equal(got, want.Ranges()) {
			t.Fatalf("merged %v, one by one %v", got, want.Ranges())
		}
		if p.Size(m.family) != CountOf(uint64(len(m.order))) {
			t.Fatalf("size %v, brute force %d", p.Size(m.family), len(m.order))
		}
	})
}

func TestPropertyExhaustionHandsOutEveryAddressOnceInOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t)
		desc := rapid.Bool().Draw(t, "desc")
		extra := map[string]string{}
		want := slices.Clone(m.order)
		if desc {
			extra[KeySearchOrder] = "desc"
			slices.Reverse(want)
		}
		cfg, _ := Parse(m.config(extra), nil)
		p := cfg.PoolFor("x")
		u := NewUsage()
		for i, w := range want {
			res, err := u.Allocate(cfg, Request{Owner: fmt.Sprint("ns/", i), Namespace: "ns", Families: []Family{m.family}})
			if err != nil {
				t.Fatalf("allocation %d of %d: %v", i, len(want), err)
			}
			if got := res.Addrs[0]; got != w {
				t.Fatalf("allocation %d = %s, want %s", i, got, w)
			}
			if !p.Contains(res.Addrs[0]) {
				t.Fatalf("%s is outside the pool", res.Addrs[0])
			}
			u.Assign(Holding{Owner: fmt.Sprint("ns/", i), Namespace: "ns", Addrs: res.Addrs})
			if got := u.Used(p, m.family).Add(u.Free(p, m.family)); got != p.Size(m.family) {
				t.Fatalf("used + free = %v, size %v", got, p.Size(m.family))
			}
		}
		_, err := u.Allocate(cfg, Request{Owner: "ns/last", Namespace: "ns", Families: []Family{m.family}})
		if e, ok := err.(*Error); !ok || e.Reason != ReasonExhausted {
			t.Fatalf("after %d allocations: %v, want PoolExhausted", len(want), err)
		}
	})
}

// TestPropertyRunTreeMatchesModel drives random Assign/Release sequences,
// including addresses outside the pool and .0/.255 ones, and compares
// the next free address and the used count with a brute-force model.
func TestPropertyRunTreeMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t)
		base := v4base
		if m.family == IPv6 {
			base = v6base
		}
		cfg, _ := Parse(m.config(nil), nil)
		p := cfg.PoolFor("x")
		u := NewUsage()
		held := map[string]netip.Addr{}
		for step := 0; step < 60; step++ {
			owner := fmt.Sprint("ns/", rapid.IntRange(0, 20).Draw(t, "owner"))
			if rapid.Bool().Draw(t, "release") {
				u.Release(owner)
				delete(held, owner)
			} else {
				a := nth(base, rapid.IntRange(0, window-1).Draw(t, "addr"))
				u.Assign(Holding{Owner: owner, Namespace: "ns", Addrs: []netip.Addr{a}})
				held[owner] = a
			}
			inUse := map[netip.Addr]bool{}
			for _, a := range held {
				inUse[a] = true
			}
			var wantFirst netip.Addr
			used := 0
			for _, a := range m.order {
				if inUse[a] {
					used++
				} else if !wantFirst.IsValid() {
					wantFirst = a
				}
			}
			res, err := u.Allocate(cfg, Request{Owner: "ns/probe", Namespace: "ns", Families: []Family{m.family}})
			switch {
			case !wantFirst.IsValid() && err == nil:
				t.Fatalf("step %d: got %v, model says exhausted", step, res.Addrs)
			case wantFirst.IsValid() && (err != nil || res.Addrs[0] != wantFirst):
				t.Fatalf("step %d: got %v %v, model says %s", step, res.Addrs, err, wantFirst)
			}
			if got := u.Used(p, m.family); got != CountOf(uint64(used)) {
				t.Fatalf("step %d: used %v, model %d", step, got, used)
			}
		}
	})
}

func TestPropertyNeverGivesAnIncompatibleAddress(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t)
		share := rapid.Bool().Draw(t, "share")
		cfg, _ := Parse(m.config(map[string]string{"allow-share-global": fmt.Sprint(share)}), nil)
		p := cfg.PoolFor("x")
		u := NewUsage()
		genPorts := func(label string) []Port {
			var ps []Port
			for _, n := range rapid.SliceOfNDistinct(rapid.IntRange(1, 4), 0, 3, rapid.ID[int]).Draw(t, label) {
				ps = append(ps, Port{Number: int32(n), Protocol: rapid.SampledFrom([]string{"TCP", "UDP"}).Draw(t, label+"proto")})
			}
			return ps
		}
		holdings := map[string]Holding{}
		for i := 0; i < 40; i++ {
			owner := fmt.Sprint("ns/", i)
			req := Request{Owner: owner, Namespace: "ns", Families: []Family{m.family}, Ports: genPorts("ports")}
			res, err := u.Allocate(cfg, req)
			if err != nil {
				continue
			}
			a := res.Addrs[0]
			if !p.Contains(a) || !allocatable(a) {
				t.Fatalf("%s outside the pool or not allocatable", a)
			}
			for _, h := range holdings {
				if !slices.Contains(h.Addrs, a) {
					continue
				}
				if !share || len(h.Ports) == 0 || len(req.Ports) == 0 || portsCollide(h.Ports, req.Ports) {
					t.Fatalf("%s given to %s (ports %v) while %s holds it (ports %v), share=%v", a, owner, req.Ports, h.Owner, h.Ports, share)
				}
			}
			h := Holding{Owner: owner, Namespace: "ns", Ports: req.Ports, Addrs: res.Addrs}
			u.Assign(h)
			holdings[owner] = h
		}
	})
}

func TestPropertyDataRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t)
		extra := map[string]string{
			"allow-share-global": fmt.Sprint(rapid.Bool().Draw(t, "share")),
			KeySkipEndIPs:        fmt.Sprint(rapid.Bool().Draw(t, "skip")),
			"cidr-other":         nth(v4base, rapid.IntRange(0, window-1).Draw(t, "o")).String() + "/" + fmt.Sprint(rapid.IntRange(22, 32).Draw(t, "bits")),
		}
		if rapid.Bool().Draw(t, "desc") {
			extra[KeySearchOrder] = "desc"
		}
		cfg, err := Parse(m.config(extra), nil)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(cfg.Data(), nil)
		if err != nil || !again.Equal(cfg) {
			t.Fatalf("Parse(Data()) = %v, %v; data %v", again.Data(), err, cfg.Data())
		}
	})
}

func TestPropertyDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genPool(t)
		cfg, _ := Parse(m.config(map[string]string{"allow-share-global": "true"}), nil)
		build := func() *Usage {
			u := NewUsage()
			for i, a := range rapid.SliceOfN(rapid.IntRange(0, window-1), 0, 30).Draw(t, "held") {
				u.Assign(Holding{Owner: fmt.Sprint("ns/", i), Namespace: "ns", Ports: tcp(int32(i%3 + 1)), Addrs: []netip.Addr{nth(v4base, a)}})
			}
			return u
		}
		u := build()
		c := u.Clone()
		req := Request{Owner: "ns/q", Namespace: "ns", Ports: tcp(1), Families: []Family{m.family}}
		r1, e1 := u.Allocate(cfg, req)
		r2, e2 := c.Allocate(cfg, req)
		if fmt.Sprint(r1, e1) != fmt.Sprint(r2, e2) {
			t.Fatalf("same input, different answers: %v %v / %v %v", r1, e1, r2, e2)
		}
	})
}
