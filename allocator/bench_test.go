package allocator

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// filled returns a Usage holding the first n addresses the pool hands out.
func filled(tb testing.TB, cfg *Config, fam Family, n int) *Usage {
	tb.Helper()
	u := NewUsage()
	for i := 0; i < n; i++ {
		owner := fmt.Sprint("ns/s", i)
		res, err := u.Allocate(cfg, Request{Owner: owner, Namespace: "ns", Families: []Family{fam}})
		if err != nil {
			tb.Fatalf("fill %d: %v", i, err)
		}
		u.Assign(Holding{Owner: owner, Namespace: "ns", Addrs: res.Addrs})
	}
	return u
}

// BenchmarkAllocate measures one allocation (Allocate, then Assign and
// Release of the answer, so the fill level stays put) at a given fill.
func BenchmarkAllocate(b *testing.B) {
	var overlapping []string
	for i := 0; i < 1000; i++ {
		// 1,000 ranges of 300 addresses starting every 250: each overlaps the next.
		lo := netip.AddrFrom4([4]byte{10, byte(i * 250 >> 16), byte(i * 250 >> 8), byte(i * 250)})
		hi := lo
		for j := 0; j < 299; j++ {
			hi = hi.Next()
		}
		overlapping = append(overlapping, lo.String()+"-"+hi.String())
	}
	cases := []struct {
		name string
		data map[string]string
		fam  Family
		used int
	}{
		{"IPv4-16/used-10k", map[string]string{"cidr-global": "10.0.0.0/16"}, IPv4, 10_000},
		{"IPv4-16/used-60k", map[string]string{"cidr-global": "10.0.0.0/16"}, IPv4, 60_000},
		{"IPv4-8/used-100k", map[string]string{"cidr-global": "10.0.0.0/8"}, IPv4, 100_000},
		{"IPv6-64/used-100k", map[string]string{"cidr-global": "2001:db8::/64"}, IPv6, 100_000},
		{"IPv4-1000-overlapping-ranges/used-10k", map[string]string{"range-global": strings.Join(overlapping, ",")}, IPv4, 10_000},
		{"IPv4-16-desc/used-60k", map[string]string{"cidr-global": "10.0.0.0/16", KeySearchOrder: "desc"}, IPv4, 60_000},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cfg := mustParse(b, c.data)
			u := filled(b, cfg, c.fam, c.used)
			req := Request{Owner: "ns/bench", Namespace: "ns", Families: []Family{c.fam}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := u.Allocate(cfg, req)
				if err != nil {
					b.Fatal(err)
				}
				u.Assign(Holding{Owner: req.Owner, Namespace: "ns", Addrs: res.Addrs})
				u.Release(req.Owner)
			}
		})
	}
}

// BenchmarkParse parses one value of 1,000 entries: overlapping CIDRs of
// both families, or overlapping ranges.
func BenchmarkParse(b *testing.B) {
	var cidrs, ranges []string
	for i := 0; i < 1000; i++ {
		if i%2 == 0 {
			cidrs = append(cidrs, fmt.Sprintf("10.%d.%d.0/23", i/256, i%256))
		} else {
			cidrs = append(cidrs, fmt.Sprintf("2001:db8:%x::/64", i))
		}
		ranges = append(ranges, fmt.Sprintf("10.%d.%d.10-10.%d.%d.200", i/256, i%256, (i+1)/256, (i+1)%256))
	}
	for name, data := range map[string]map[string]string{
		"cidr-1000-entries":  {"cidr-global": strings.Join(cidrs, ",")},
		"range-1000-entries": {"range-global": strings.Join(ranges, ",")},
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Parse(data, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAllocateAllocations guards the hot path: one allocation allocates only
// its small Result, whatever the pool's size.
func TestAllocateAllocations(t *testing.T) {
	cfg := mustParse(t, map[string]string{"cidr-global": "2001:db8::/64"})
	u := filled(t, cfg, IPv6, 1000)
	req := Request{Owner: "ns/x", Namespace: "ns", Families: []Family{IPv6}}
	n := testing.AllocsPerRun(100, func() {
		if _, err := u.Allocate(cfg, req); err != nil {
			t.Fatal(err)
		}
	})
	if n > 3 {
		t.Fatalf("Allocate makes %v allocations per call, want at most 3", n)
	}
}
