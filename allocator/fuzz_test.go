package allocator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary values to every kind of key: Parse must never
// panic, a bad value must be a KeyError naming its key, and a good config
// must survive Parse(Data()).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"192.168.0.200/29", "192.168.0.200/30,192.168.0.200/29", "192.168.0.10-192.168.0.11,192.168.0.10-192.168.0.13",
		"0.0.0.0/32", "2001:db8::/64", " 10.0.0.0/8 , 2001:db8::1-2001:db8::ff", "10.0.0.5-10.0.0.1", "::ffff:1.2.3.4-::ffff:1.2.3.9",
		"fe80::1%eth0-fe80::2", "", ",,", "true", "desc",
	} {
		f.Add("cidr-global", s)
		f.Add("range-ns", s)
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		cfg, err := Parse(map[string]string{key: value, KeySkipEndIPs: "true"}, nil)
		if cfg == nil {
			t.Fatal("Parse returned no Config")
		}
		if err != nil {
			if !strings.Contains(err.Error(), key) && key != "" {
				t.Fatalf("error %q does not name the key %q", err, key)
			}
			return
		}
		again, err := Parse(cfg.Data(), nil)
		if err != nil || !again.Equal(cfg) {
			t.Fatalf("Parse(Data()) of %q=%q: %v, data %v", key, value, err, cfg.Data())
		}
	})
}

// FuzzAllocate builds a pool of up to four overlapping ranges from the
// fuzzer's numbers, holds some addresses, and compares the next address
// (ascending and descending) with a brute-force walk.
func FuzzAllocate(f *testing.F) {
	f.Add(uint16(250), uint16(270), uint16(0), uint16(600), uint16(240), uint16(255), uint16(10), uint16(400), []byte{0, 5, 9}, false, false)
	f.Add(uint16(0), uint16(0), uint16(255), uint16(256), uint16(511), uint16(512), uint16(1000), uint16(1023), []byte{1}, true, false)
	f.Add(uint16(3), uint16(900), uint16(5), uint16(6), uint16(7), uint16(8), uint16(9), uint16(10), []byte{}, false, true)
	f.Fuzz(func(t *testing.T, a1, b1, a2, b2, a3, b3, a4, b4 uint16, held []byte, desc, v6 bool) {
		base := v4base
		if v6 {
			base = v6base
		}
		var entries []string
		members := map[netip.Addr]bool{}
		for _, r := range [][2]uint16{{a1, b1}, {a2, b2}, {a3, b3}, {a4, b4}} {
			lo, hi := int(r[0]%window), int(r[1]%window)
			if lo > hi {
				lo, hi = hi, lo
			}
			entries = append(entries, nth(base, lo).String()+"-"+nth(base, hi).String())
			for i := lo; i <= hi; i++ {
				members[nth(base, i)] = true
			}
		}
		data := map[string]string{"range-global": strings.Join(entries, ",")}
		if desc {
			data[KeySearchOrder] = "desc"
		}
		cfg, err := Parse(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		u := NewUsage()
		inUse := map[netip.Addr]bool{}
		for i, h := range held {
			a := nth(base, int(h)*4%window)
			u.Assign(Holding{Owner: fmt.Sprint("ns/", i), Namespace: "ns", Addrs: []netip.Addr{a}})
			inUse[a] = true
		}
		var free []netip.Addr
		for a := range members {
			if allocatable(a) && !inUse[a] {
				free = append(free, a)
			}
		}
		slices.SortFunc(free, netip.Addr.Compare)
		if desc {
			slices.Reverse(free)
		}
		fam := IPv4
		if v6 {
			fam = IPv6
		}
		res, err := u.Allocate(cfg, Request{Owner: "ns/q", Namespace: "ns", Families: []Family{fam}})
		if len(free) == 0 {
			if err == nil {
				t.Fatalf("got %v, brute force says exhausted", res.Addrs)
			}
			return
		}
		if err != nil || res.Addrs[0] != free[0] {
			t.Fatalf("got %v %v, brute force %s", res.Addrs, err, free[0])
		}
		p := cfg.PoolFor("ns")
		if got := u.Free(p, fam); got != CountOf(uint64(len(free))) {
			t.Fatalf("free = %v, brute force %d", got, len(free))
		}
	})
}
