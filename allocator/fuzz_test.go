package allocator

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// goodValueFor returns a well-formed value for the kind of key k.
func goodValueFor(k string) (string, bool) {
	switch {
	case k == KeySkipEndIPs:
		return "true", true
	case k == KeySearchOrder:
		return "desc", true
	case strings.HasPrefix(k, KeyCIDRPrefix) && len(k) > len(KeyCIDRPrefix):
		return "10.9.0.0/30", true
	case strings.HasPrefix(k, KeyRangePrefix) && len(k) > len(KeyRangePrefix):
		return "10.9.0.1-10.9.0.2", true
	case strings.HasPrefix(k, KeyAllowSharePrefix) && len(k) > len(KeyAllowSharePrefix):
		return "true", true
	case strings.HasPrefix(k, KeyInterfacePrefix) && len(k) > len(KeyInterfacePrefix):
		return "eth0", true
	}
	return "", false
}

// checkKeyErrors checks that err is nil or joins one *KeyError per bad key
// of data, each naming its key, its value and (when one is to blame) an
// entry of that value.
func checkKeyErrors(t *testing.T, data map[string]string, err error) []*KeyError {
	t.Helper()
	if err == nil {
		return nil
	}
	var out []*KeyError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ke *KeyError
		if !errors.As(e, &ke) {
			t.Fatalf("error %v is not a *KeyError", e)
		}
		if v, ok := data[ke.Key]; !ok || v != ke.Value {
			t.Fatalf("KeyError names %q=%q, not in the data", ke.Key, ke.Value)
		}
		if ke.Entry != "" && !slices.ContainsFunc(strings.Split(ke.Value, ","), func(s string) bool { return strings.TrimSpace(s) == ke.Entry }) {
			t.Fatalf("KeyError blames %q, not an entry of %q", ke.Entry, ke.Value)
		}
		if !strings.Contains(ke.Error(), fmt.Sprintf("%s=%q", ke.Key, ke.Value)) {
			t.Fatalf("message %q does not quote the key and value", ke.Error())
		}
		out = append(out, ke)
	}
	return out
}

// FuzzParse feeds arbitrary values to every kind of key. Parse must never
// panic; a bad value must be a KeyError naming its key and entry that
// costs no other key anything and, given a last good config, keeps its
// value; a good config must survive Parse(data()) and allocate only
// addresses of its pool.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"192.168.0.200/29", "192.168.0.200/30,192.168.0.200/29", "192.168.0.10-192.168.0.11,192.168.0.10-192.168.0.13",
		"0.0.0.0/32", "2001:db8::/64", " 10.0.0.0/8 , 2001:db8::1-2001:db8::ff", "10.0.0.5-10.0.0.1", "::ffff:1.2.3.4-::ffff:1.2.3.9",
		"fe80::1%eth0-fe80::2", "", ",,", "true", "desc", "::/0", "::-::3", "255.255.255.0/24",
	} {
		f.Add("cidr-global", s)
		f.Add("range-ns", s)
	}
	f.Add("allow-share-ns", "TRUE")
	f.Add("interface-global", "bond0.100")
	f.Add(KeySearchOrder, "asc")
	f.Add(KeySkipEndIPs, "false")
	f.Add("serach-order", "desc")
	f.Add("cidrglobal", "10.0.0.0/24")
	f.Add("cidr-", "10.0.0.0/24")
	f.Add("allow_share-x", "true")
	f.Fuzz(func(t *testing.T, key, value string) {
		data := map[string]string{key: value}
		if key != KeySkipEndIPs {
			data[KeySkipEndIPs] = "true"
		}
		cfg, err := Parse(data, nil)
		if cfg == nil {
			t.Fatal("Parse returned no Config")
		}
		kes := checkKeyErrors(t, data, err)
		if len(kes) > 1 || (len(kes) == 1 && kes[0].Key != key) {
			t.Fatalf("errors %v for one bad key %q", err, key)
		}

		// A key is reported unknown exactly when the existing provider
		// does not understand it; the key suggested instead is one it does.
		unknown := false
		for _, n := range cfg.Notices() {
			if n.Key != key {
				t.Fatalf("notice %q names another key than %q", n, key)
			}
			if n.Kind == NoticeUnknownKey {
				unknown = true
				if n.Meant != "" && (!modelKnownKey(n.Meant) || n.Meant == key) {
					t.Fatalf("%q: suggests %q, not a known key", key, n.Meant)
				}
			}
		}
		if unknown == modelKnownKey(key) {
			t.Fatalf("key %q: reported unknown %v", key, unknown)
		}

		// A bad key costs the others nothing.
		if key != "cidr-ok" && key != "range-ok" && key != KeySkipEndIPs {
			withOK := map[string]string{key: value, "cidr-ok": "10.1.0.0/30"}
			other, _ := Parse(withOK, nil)
			if got := rangesOf(other.PoolFor("ok")); got != "10.1.0.0-10.1.0.3" {
				t.Fatalf("%q=%q changed pool ok to %s", key, value, got)
			}
		}

		// With a last good value, a bad value keeps it.
		if good, ok := goodValueFor(key); ok {
			last, lerr := Parse(map[string]string{key: good}, nil)
			if lerr != nil {
				t.Fatalf("good value %s=%q: %v", key, good, lerr)
			}
			next, nerr := Parse(map[string]string{key: value}, last)
			if kes := checkKeyErrors(t, map[string]string{key: value}, nerr); len(kes) > 0 {
				if kes[0].Kept == nil || *kes[0].Kept != good || !next.equal(last) {
					t.Fatalf("%s=%q after %q: kept %v, config %v", key, value, good, kes[0].Kept, next.data())
				}
			}
		}
		if err != nil {
			return
		}

		again, err := Parse(cfg.data(), nil)
		if err != nil || !again.equal(cfg) {
			t.Fatalf("Parse(data()) of %q=%q: %v, data %v", key, value, err, cfg.data())
		}
		for _, p := range cfg.Pools() {
			u := NewUsage()
			for i := 0; i < 3; i++ {
				res, err := u.Allocate(cfg, Request{Owner: fmt.Sprint(p.Name(), "/", i), Namespace: p.Name(), Policy: PreferDualStack})
				if err != nil {
					break
				}
				for _, a := range res.Addrs {
					if !p.DHCP() && (!p.Contains(a) || !modelAllocatable(a)) {
						t.Fatalf("pool %s (%s) handed out %s", p.Name(), rangesOf(p), a)
					}
					if !p.DHCP() && len(u.Holders(a)) > 0 {
						t.Fatalf("pool %s handed out %s twice", p.Name(), a)
					}
				}
				u.Assign(Holding{Owner: fmt.Sprint(p.Name(), "/", i), Namespace: p.Name(), Addrs: res.Addrs})
			}
		}
	})
}

// modelKnownKey states independently of parse.go which keys the existing
// provider understands.
func modelKnownKey(k string) bool {
	if k == "search-order" || k == "skip-end-ips-in-cidr" {
		return true
	}
	for _, p := range []string{"cidr-", "range-", "allow-share-", "interface-"} {
		if strings.HasPrefix(k, p) && k != p {
			return true
		}
	}
	return false
}

// FuzzAllocate builds a pool of four overlapping ranges from the fuzzer's
// numbers (the top bits of a1 choose a window at the bottom, the middle or
// the top of the address space), holds some addresses, then allocates a
// few in a row, ascending or descending, comparing each answer and the
// free count with a brute-force walk.
func FuzzAllocate(f *testing.F) {
	f.Add(uint16(250), uint16(270), uint16(0), uint16(600), uint16(240), uint16(255), uint16(10), uint16(400), []byte{0, 5, 9}, false, false)
	f.Add(uint16(0), uint16(0), uint16(255), uint16(256), uint16(511), uint16(512), uint16(1000), uint16(1023), []byte{1}, true, false)
	f.Add(uint16(3), uint16(900), uint16(5), uint16(6), uint16(7), uint16(8), uint16(9), uint16(10), []byte{}, false, true)
	f.Add(uint16(1<<14), uint16(3), uint16(0), uint16(0), uint16(1), uint16(2), uint16(2), uint16(3), []byte{0, 0, 0, 1}, false, true)
	f.Add(uint16(2<<14|1000), uint16(1023), uint16(1020), uint16(1023), uint16(0), uint16(1023), uint16(5), uint16(6), []byte{3, 255}, true, false)
	f.Fuzz(func(t *testing.T, a1, b1, a2, b2, a3, b3, a4, b4 uint16, held []byte, desc, v6 bool) {
		fam := IPv4
		if v6 {
			fam = IPv6
		}
		base := bases[fam][int(a1>>14)%len(bases[fam])]
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
		for i := 0; i+1 < len(held); i += 2 {
			a := nth(base, (int(held[i])<<8|int(held[i+1]))%window)
			u.Assign(Holding{Owner: fmt.Sprint("ns/h", i), Namespace: "ns", Addrs: []netip.Addr{a}})
			inUse[a] = true
		}
		var free []netip.Addr
		for a := range members {
			if modelAllocatable(a) && !inUse[a] {
				free = append(free, a)
			}
		}
		slices.SortFunc(free, netip.Addr.Compare)
		if desc {
			slices.Reverse(free)
		}
		p := cfg.PoolFor("ns")
		for i := 0; i < 8; i++ {
			if got := u.free(p, fam); got != countOf(uint64(len(free))) {
				t.Fatalf("free = %v, brute force %d", got, len(free))
			}
			if got := u.Used(p, fam).Add(u.free(p, fam)); got != p.Size(fam) {
				t.Fatalf("used + free = %v, size %v", got, p.Size(fam))
			}
			owner := fmt.Sprint("ns/q", i)
			res, err := u.Allocate(cfg, Request{Owner: owner, Namespace: "ns", Families: []Family{fam}})
			if len(free) == 0 {
				var ae *Error
				if !errors.As(err, &ae) || ae.Reason != ReasonExhausted {
					t.Fatalf("got %v %v, brute force says exhausted", res.Addrs, err)
				}
				return
			}
			if err != nil || res.Addrs[0] != free[0] {
				t.Fatalf("allocation %d: got %v %v, brute force %s", i, res.Addrs, err, free[0])
			}
			u.Assign(Holding{Owner: owner, Namespace: "ns", Addrs: res.Addrs})
			free = free[1:]
		}
	})
}
