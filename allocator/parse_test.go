package allocator

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// rangesOf returns the pool's ranges as "from-to" strings.
func rangesOf(p *Pool) string {
	var out []string
	for _, r := range p.Ranges() {
		out = append(out, r.From().String()+"-"+r.To().String())
	}
	return strings.Join(out, ",")
}

func TestParsePools(t *testing.T) {
	tests := []struct {
		name   string
		data   map[string]string
		ns     string // namespace asking
		pool   string // the pool chosen
		ranges string
		v4, v6 uint64 // allocatable counts
	}{
		{name: "seed /29", data: map[string]string{"cidr-global": "192.168.0.200/29"}, ns: "any",
			pool: "global", ranges: "192.168.0.200-192.168.0.207", v4: 8},
		{name: "overlapping CIDRs merge", data: map[string]string{"cidr-global": "192.168.0.200/30,192.168.0.200/29"}, ns: "x",
			pool: "global", ranges: "192.168.0.200-192.168.0.207", v4: 8},
		{name: "overlapping ranges merge", data: map[string]string{"range-global": "192.168.0.10-192.168.0.11,192.168.0.10-192.168.0.13"}, ns: "x",
			pool: "global", ranges: "192.168.0.10-192.168.0.13", v4: 4},
		{name: "duplicate entries count once", data: map[string]string{"range-global": "192.168.0.10-192.168.0.11, 192.168.0.10-192.168.0.11"}, ns: "x",
			pool: "global", ranges: "192.168.0.10-192.168.0.11", v4: 2},
		{name: "spaces around entries", data: map[string]string{"cidr-global": " 10.0.0.0/30 ,  10.0.1.0/31 "}, ns: "x",
			pool: "global", ranges: "10.0.0.0-10.0.0.3,10.0.1.0-10.0.1.1", v4: 4},
		{name: "host bits are masked", data: map[string]string{"cidr-global": "192.168.0.201/29"}, ns: "x",
			pool: "global", ranges: "192.168.0.200-192.168.0.207", v4: 8},
		{name: "namespace keys win over global", data: map[string]string{"cidr-global": "10.0.0.0/24", "range-finance": "10.1.0.10-10.1.0.12"}, ns: "finance",
			pool: "finance", ranges: "10.1.0.10-10.1.0.12", v4: 3},
		{name: "cidr and range of a namespace: union", data: map[string]string{"cidr-finance": "10.1.0.0/30", "range-finance": "10.1.0.2-10.1.0.5"}, ns: "finance",
			pool: "finance", ranges: "10.1.0.0-10.1.0.5", v4: 5},
		{name: "mixed families", data: map[string]string{"cidr-global": "10.0.0.0/30,2001:db8::/126"}, ns: "x",
			pool: "global", ranges: "10.0.0.0-10.0.0.3,2001:db8::-2001:db8::3", v4: 3, v6: 3},
		{name: "IPv6 range", data: map[string]string{"range-global": "2001:db8::10-2001:db8::1f"}, ns: "x",
			pool: "global", ranges: "2001:db8::10-2001:db8::1f", v6: 16},
		{name: ".0 and .255 are not allocatable", data: map[string]string{"range-global": "10.0.0.250-10.0.1.5"}, ns: "x",
			pool: "global", ranges: "10.0.0.250-10.0.1.5", v4: 10},
		{name: "skip-end-ips-in-cidr", data: map[string]string{"cidr-global": "192.168.0.200/30,192.168.0.210/31,192.168.0.220/32", KeySkipEndIPs: "true"}, ns: "x",
			pool: "global", ranges: "192.168.0.201-192.168.0.202,192.168.0.210-192.168.0.211,192.168.0.220-192.168.0.220", v4: 5},
		{name: "skip-end-ips-in-cidr leaves ranges alone", data: map[string]string{"range-global": "192.168.0.200-192.168.0.203", KeySkipEndIPs: "true"}, ns: "x",
			pool: "global", ranges: "192.168.0.200-192.168.0.203", v4: 4},
		{name: "IPv4-mapped addresses in ranges become IPv4", data: map[string]string{"range-global": "::ffff:10.0.0.1-::ffff:10.0.0.2"}, ns: "x",
			pool: "global", ranges: "10.0.0.1-10.0.0.2", v4: 2},
		{name: "a /8", data: map[string]string{"cidr-global": "10.0.0.0/8"}, ns: "x",
			pool: "global", ranges: "10.0.0.0-10.255.255.255", v4: 65536 * 254},
		{name: "seed /29 with skip-end-ips-in-cidr", data: map[string]string{"cidr-global": "192.168.0.200/29", KeySkipEndIPs: "true"}, ns: "x",
			pool: "global", ranges: "192.168.0.201-192.168.0.206", v4: 6},
		{name: "skip-end-ips-in-cidr: each CIDR, not their union", data: map[string]string{"cidr-global": "10.0.0.0/30,10.0.0.4/30", KeySkipEndIPs: "true"}, ns: "x",
			pool: "global", ranges: "10.0.0.1-10.0.0.2,10.0.0.5-10.0.0.6", v4: 4},
		{name: "skip-end-ips-in-cidr: overlapping CIDRs", data: map[string]string{"cidr-global": "192.168.0.200/30,192.168.0.200/29", KeySkipEndIPs: "true"}, ns: "x",
			pool: "global", ranges: "192.168.0.201-192.168.0.206", v4: 6},
		{name: "skip-end-ips-in-cidr leaves IPv6 alone", data: map[string]string{"cidr-global": "2001:db8::/126", KeySkipEndIPs: "true"}, ns: "x",
			pool: "global", ranges: "2001:db8::-2001:db8::3", v6: 3},
		{name: "IPv6 Subnet-Router anycast addresses are not allocatable", data: map[string]string{"range-global": "2001:db8:0:1::-2001:db8:0:1::2,2001:db8:0:2::/128"}, ns: "x",
			pool: "global", ranges: "2001:db8:0:1::-2001:db8:0:1::2,2001:db8:0:2::-2001:db8:0:2::", v6: 2},
		{name: "a range across a /64 boundary", data: map[string]string{"range-global": "2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::1"}, ns: "x",
			pool: "global", ranges: "2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::1", v6: 3},
		{name: "skip-end-ips-in-cidr false", data: map[string]string{"cidr-global": "192.168.0.200/30", KeySkipEndIPs: "false"}, ns: "x",
			pool: "global", ranges: "192.168.0.200-192.168.0.203", v4: 4},
		{name: "spaces around a range's dash", data: map[string]string{"range-global": " 10.0.0.1 - 10.0.0.3 "}, ns: "x",
			pool: "global", ranges: "10.0.0.1-10.0.0.3", v4: 3},
		{name: "a range of one address", data: map[string]string{"range-global": "10.0.0.7-10.0.0.7"}, ns: "x",
			pool: "global", ranges: "10.0.0.7-10.0.0.7", v4: 1},
		{name: "a range of only .255 and .0", data: map[string]string{"range-global": "10.0.0.255-10.0.1.0"}, ns: "x",
			pool: "global", ranges: "10.0.0.255-10.0.1.0", v4: 0},
		{name: "overlapping IPv6 ranges and CIDRs", data: map[string]string{"range-global": "2001:db8::1-2001:db8::8,2001:db8::6-2001:db8::a", "cidr-global": "2001:db8::8/125"}, ns: "x",
			pool: "global", ranges: "2001:db8::1-2001:db8::f", v6: 15},
		{name: "overlapping entries of both families at once", data: map[string]string{"range-global": "10.0.0.1-10.0.0.5,2001:db8::1-2001:db8::2", "cidr-global": "10.0.0.4/30,2001:db8::/127"}, ns: "x",
			pool: "global", ranges: "10.0.0.1-10.0.0.7,2001:db8::-2001:db8::2", v4: 7, v6: 2},
		{name: "a CIDR in a range key (the form decides, as in the existing provider)", data: map[string]string{"range-global": "10.0.0.0/30,10.0.1.1-10.0.1.2"}, ns: "x",
			pool: "global", ranges: "10.0.0.0-10.0.0.3,10.0.1.1-10.0.1.2", v4: 5},
		{name: "a range in a cidr key", data: map[string]string{"cidr-global": "10.0.0.1-10.0.0.9"}, ns: "x",
			pool: "global", ranges: "10.0.0.1-10.0.0.9", v4: 9},
		{name: "skip-end-ips-in-cidr applies to a CIDR in a range key", data: map[string]string{"range-global": "192.168.0.200/30", KeySkipEndIPs: "true"}, ns: "x",
			pool: "global", ranges: "192.168.0.201-192.168.0.202", v4: 2},
		{name: "the global pool serves a namespace with only other keys", data: map[string]string{"cidr-global": "10.0.0.0/30", "allow-share-x": "true", "interface-x": "eth1"}, ns: "x",
			pool: "global", ranges: "10.0.0.0-10.0.0.3", v4: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(tc.data, nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			p := cfg.PoolFor(tc.ns)
			if p == nil {
				t.Fatalf("no pool for %q", tc.ns)
			}
			if p.Name() != tc.pool {
				t.Errorf("pool = %q, want %q", p.Name(), tc.pool)
			}
			if got := rangesOf(p); got != tc.ranges {
				t.Errorf("ranges = %s, want %s", got, tc.ranges)
			}
			if got := p.Size(IPv4); got != countOf(tc.v4) {
				t.Errorf("IPv4 size = %v, want %d", got, tc.v4)
			}
			if got := p.Size(IPv6); got != countOf(tc.v6) {
				t.Errorf("IPv6 size = %v, want %d", got, tc.v6)
			}
		})
	}
}

func TestParseOptions(t *testing.T) {
	cfg, err := Parse(map[string]string{
		"cidr-global":          "10.0.0.0/24",
		"allow-share-global":   "true",
		"allow-share-finance":  "false",
		"interface-global":     "eth0",
		"interface-finance":    "bond0",
		KeySearchOrder:         "desc",
		"some-unknown-key":     "whatever",
		"kubevip-services":     "{}",
		"allow-share-dev":      " TRUE ",
		"cidr-dhcp":            "0.0.0.0/32",
		"range-dhcp2":          "0.0.0.0/32",
		"range-other-dev-team": "10.9.0.1-10.9.0.2",
	}, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !cfg.AllowShare("default") || cfg.AllowShare("finance") || !cfg.AllowShare("dev") {
		t.Errorf("allow-share: default %v finance %v dev %v", cfg.AllowShare("default"), cfg.AllowShare("finance"), cfg.AllowShare("dev"))
	}
	if cfg.Interface("default") != "eth0" || cfg.Interface("finance") != "bond0" {
		t.Errorf("interface: %q %q", cfg.Interface("default"), cfg.Interface("finance"))
	}
	if !cfg.descending() {
		t.Error("search-order desc not honoured")
	}
	if p := cfg.PoolFor("dhcp"); p == nil || !p.DHCP() {
		t.Error("cidr-dhcp: 0.0.0.0/32 is not a DHCP pool")
	}
	if p := cfg.PoolFor("dhcp2"); p == nil || !p.DHCP() {
		t.Error("range-dhcp2: 0.0.0.0/32 is not a DHCP pool")
	}
	if p := cfg.PoolFor("other-dev-team"); p == nil || p.Name() != "other-dev-team" {
		t.Error("a namespace with dashes in its name lost its pool")
	}
	none, _ := Parse(map[string]string{"cidr-finance": "10.0.0.0/30"}, nil)
	if none.PoolFor("default") != nil {
		t.Error("a namespace without keys and no global pool got a pool")
	}
}

func TestParseErrorsNameKeyAndEntry(t *testing.T) {
	tests := []struct {
		name, key, value, entry, want string
	}{
		{"bad prefix length", "cidr-global", "192.168.0.0/24,192.168.0.200/33", "192.168.0.200/33", "not a CIDR"},
		{"range end below start", "range-global", "192.168.0.20-192.168.0.10", "192.168.0.20-192.168.0.10", "below start"},
		{"range of mixed families", "range-x", "10.0.0.1-2001:db8::1", "10.0.0.1-2001:db8::1", "different families"},
		{"range without dash", "range-x", "10.0.0.1", "10.0.0.1", "FROM-TO"},
		{"range without dash, IPv6", "range-x", "2001:db8::1", "2001:db8::1", "FROM-TO"},
		{"not an address", "range-x", "10.0.0.1-banana", "10.0.0.1-banana", "banana"},
		{"zone", "range-x", "fe80::1%eth0-fe80::2", "fe80::1%eth0-fe80::2", "zone"},
		{"empty value", "cidr-x", " , ", "", "no entries"},
		{"DHCP mixed with addresses", "cidr-x", "0.0.0.0/32,10.0.0.0/30", "", "DHCP"},
		{"not a boolean", "allow-share-x", "maybe", "", "boolean"},
		{"bad search order", KeySearchOrder, "random", "", "desc"},
		{"bad interface", "interface-x", "eth 0", "", "interface"},
		{"interface name too long", "interface-global", "a-very-long-ifname", "", "interface"},
		{"empty interface", "interface-global", "  ", "", "interface"},
		{"not a boolean skip-end", KeySkipEndIPs, "yes please", "", "boolean"},
		{"bad entry among good ones", "range-global", "10.0.0.1-10.0.0.2, 10.0.0.9-10.0.0.3 ,10.0.1.1-10.0.1.2", "10.0.0.9-10.0.0.3", "below start"},
		{"IPv6 range end below start", "range-x", "2001:db8::9-2001:db8::1", "2001:db8::9-2001:db8::1", "below start"},
		{"IPv4-mapped CIDR", "cidr-x", "::ffff:10.0.0.0/120", "::ffff:10.0.0.0/120", "IPv4-mapped"},
		{"a bare address", "cidr-x", "10.0.0.1", "10.0.0.1", "not a CIDR (ADDRESS/BITS) or a range (FROM-TO)"},
		{"a bare address in a range key", "range-x", "10.0.0.0/24,2001:db8::1", "2001:db8::1", "or a range (FROM-TO)"},
		{"a CIDR with a dash", "range-x", "10.0.0.0/24-10.0.1.0/24", "10.0.0.0/24-10.0.1.0/24", "not a CIDR"},
		{"DHCP in a range key mixed with addresses", "range-x", "0.0.0.0/32,10.0.0.1-10.0.0.2", "", "DHCP"},
		{"a range with three ends", "range-x", "10.0.0.1-10.0.0.2-10.0.0.3", "10.0.0.1-10.0.0.2-10.0.0.3", "not an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(map[string]string{tc.key: tc.value, "cidr-ok": "10.1.0.0/30"}, nil)
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error %v is not a *KeyError", err)
			}
			if ke.Key != tc.key || ke.Value != tc.value || ke.Entry != tc.entry {
				t.Errorf("KeyError{Key %q, Value %q, Entry %q}, want {%q, %q, %q}", ke.Key, ke.Value, ke.Entry, tc.key, tc.value, tc.entry)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.key) || !strings.Contains(msg, tc.want) {
				t.Errorf("message %q should name %q and say %q", msg, tc.key, tc.want)
			}
		})
	}
}

func TestBadKeyInvalidatesOnlyItself(t *testing.T) {
	cfg, err := Parse(map[string]string{
		"cidr-global":        "10.0.0.0/30",
		"cidr-finance":       "10.1.0.0/33",
		"range-finance":      "10.1.0.5-10.1.0.6",
		"cidr-broken":        "nonsense",
		"allow-share-global": "yes?",
	}, nil)
	if err == nil {
		t.Fatal("no error for three bad keys")
	}
	var n int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ke *KeyError
		if errors.As(e, &ke) {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d key errors, want 3: %v", n, err)
	}
	if got := rangesOf(cfg.PoolFor("default")); got != "10.0.0.0-10.0.0.3" {
		t.Errorf("global pool = %s, want it untouched", got)
	}
	if got := rangesOf(cfg.PoolFor("finance")); got != "10.1.0.5-10.1.0.6" {
		t.Errorf("finance = %s, want the good range only", got)
	}
	// A namespace whose only key is bad has no addresses (it does not fall
	// back to global, which would hand it addresses meant for others).
	p := cfg.PoolFor("broken")
	if p == nil || p.Name() != "broken" || p.invalid == "" || p.Has(IPv4) {
		t.Errorf("broken pool = %+v", p)
	}
	if cfg.AllowShare("x") {
		t.Error("a bad allow-share value enabled sharing")
	}
}

func TestLastGoodValueKeepsServing(t *testing.T) {
	good, err := Parse(map[string]string{"cidr-global": "10.0.0.0/30", "range-x": "10.2.0.1-10.2.0.2", "allow-share-global": "true"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse(map[string]string{"cidr-global": "10.0.0.0/300", "range-x": "10.3.0.1-10.3.0.2", "allow-share-global": "ja"}, good)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Kept == nil {
		t.Fatalf("err = %v, want a KeyError that keeps the last good value", err)
	}
	if !strings.Contains(err.Error(), `keeping the last good value "10.0.0.0/30"`) {
		t.Errorf("message %q does not say what keeps serving", err)
	}
	if got := rangesOf(next.PoolFor("default")); got != "10.0.0.0-10.0.0.3" {
		t.Errorf("global = %s, want the last good 10.0.0.0/30", got)
	}
	if got := rangesOf(next.PoolFor("x")); got != "10.3.0.1-10.3.0.2" {
		t.Errorf("x = %s, want the new good value", got)
	}
	if !next.AllowShare("y") {
		t.Error("allow-share lost its last good value")
	}
	if next.Accepted()["cidr-global"] != "10.0.0.0/30" {
		t.Errorf("accepted = %v", next.Accepted())
	}
	// The kept value survives a second bad edit too.
	third, _ := Parse(map[string]string{"cidr-global": "still bad"}, next)
	if got := rangesOf(third.PoolFor("default")); got != "10.0.0.0-10.0.0.3" {
		t.Errorf("after a second bad edit global = %s", got)
	}
	// Deleting a key removes it: only malformed values fall back.
	fourth, err := Parse(map[string]string{}, third)
	if err != nil || fourth.PoolFor("default") != nil {
		t.Errorf("a removed key kept serving: %v %v", err, fourth.PoolFor("default"))
	}
}

func TestDataRoundTrips(t *testing.T) {
	cfg, err := Parse(map[string]string{
		"cidr-global": "192.168.0.200/29,2001:db8::/120", "range-x": "10.0.0.250-10.0.1.5",
		"cidr-d": "0.0.0.0/32", "allow-share-x": "true", "interface-global": "eth1",
		KeySearchOrder: "desc", KeySkipEndIPs: "true",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(cfg.data(), nil)
	if err != nil {
		t.Fatalf("Parse(data()): %v (data %v)", err, cfg.data())
	}
	if !again.equal(cfg) {
		t.Fatalf("Parse(data()) differs: %v", again.data())
	}
	other, _ := Parse(map[string]string{"cidr-global": "192.168.0.200/30"}, nil)
	if other.equal(cfg) {
		t.Fatal("Equal says two different configs are equal")
	}
}

func TestConfigAccessors(t *testing.T) {
	cfg := mustParse(t, map[string]string{
		"cidr-global": "10.0.0.0/30", "range-b": "10.2.0.1-10.2.0.2", "cidr-a": "10.1.0.0/30,2001:db8::/127",
		"cidr-d": "0.0.0.0/32", "allow-share-a": "true", KeySearchOrder: "DESC", "unrelated": "x",
	})
	var names []string
	for _, p := range cfg.Pools() {
		names = append(names, p.Name())
	}
	if got := strings.Join(names, ","); got != "a,b,d,global" {
		t.Errorf("Pools() = %s, want sorted by name", got)
	}
	for a, want := range map[string]bool{"10.0.0.3": true, "10.2.0.2": true, "10.2.0.3": false, "2001:db8::1": true,
		"::ffff:10.1.0.1": true, "0.0.0.0": false, "192.0.2.1": false} {
		if got := cfg.inAnyPool(netip.MustParseAddr(a)); got != want {
			t.Errorf("inAnyPool(%s) = %v, want %v", a, got, want)
		}
	}
	if !cfg.descending() {
		t.Error("search-order DESC not honoured")
	}
	acc := cfg.Accepted()
	if acc["cidr-a"] != "10.1.0.0/30,2001:db8::/127" || acc[KeySearchOrder] != "DESC" || len(acc) != 6 {
		t.Errorf("Accepted() = %v, want the six known keys as written", acc)
	}
	acc["cidr-a"] = "changed"
	if cfg.Accepted()["cidr-a"] == "changed" {
		t.Error("Accepted() exposes the Config's own map")
	}
	a := cfg.PoolFor("a")
	if !a.Has(IPv4) || !a.Has(IPv6) || a.DHCP() || a.invalid != "" {
		t.Errorf("pool a: has v4 %v v6 %v dhcp %v invalid %q", a.Has(IPv4), a.Has(IPv6), a.DHCP(), a.invalid)
	}
	if d := cfg.PoolFor("d"); !d.DHCP() || d.Has(IPv4) || d.Contains(netip.IPv4Unspecified()) {
		t.Errorf("DHCP pool: dhcp %v, has %v, contains 0.0.0.0 %v; want a marker without addresses", d.DHCP(), d.Has(IPv4), d.Contains(netip.IPv4Unspecified()))
	}
	asc, _ := Parse(map[string]string{KeySearchOrder: "asc"}, nil)
	if asc.descending() {
		t.Error("search-order asc is descending")
	}
}

func TestDHCPTakesNoCompany(t *testing.T) {
	for _, data := range []map[string]string{
		{"cidr-x": "0.0.0.0/32", "range-x": "10.0.0.1-10.0.0.2"},
		{"cidr-x": "10.0.0.0/30, 0.0.0.0/32"},
	} {
		cfg, err := Parse(data, nil)
		var ke *KeyError
		if !errors.As(err, &ke) || !strings.Contains(err.Error(), "DHCP") {
			t.Errorf("%v: err = %v, want a KeyError about DHCP", data, err)
			continue
		}
		if p := cfg.PoolFor("x"); p.Has(IPv4) && p.DHCP() {
			t.Errorf("%v: pool is both DHCP and addresses", data)
		}
	}
	// 0.0.0.0/32 among the keys of another namespace does not make global DHCP.
	cfg := mustParse(t, map[string]string{"cidr-global": "10.0.0.0/30", "cidr-dhcp": "0.0.0.0/32"})
	if cfg.PoolFor("other").DHCP() || !cfg.PoolFor("dhcp").DHCP() {
		t.Error("DHCP leaked between namespaces")
	}
}

func TestKeyErrorWithoutLastSaysIgnored(t *testing.T) {
	_, err := Parse(map[string]string{"cidr-global": "10.0.0.0/33"}, nil)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Kept != nil || !strings.Contains(err.Error(), "key ignored") ||
		!strings.Contains(err.Error(), `entry "10.0.0.0/33"`) || ke.Unwrap() == nil {
		t.Fatalf("err = %v", err)
	}
	// The last config did not have the key: nothing to keep.
	last := mustParse(t, map[string]string{"cidr-other": "10.1.0.0/30"})
	_, err = Parse(map[string]string{"cidr-global": "10.0.0.0/33", "cidr-other": "10.1.0.0/30"}, last)
	if !errors.As(err, &ke) || ke.Kept != nil {
		t.Fatalf("err = %v, want nothing kept", err)
	}
}

func TestTheChangedKeyIsRejectedNotTheUnchangedOne(t *testing.T) {
	last := mustParse(t, map[string]string{"range-x": "10.7.0.1-10.7.0.5"})
	// cidr-x sorts first, but it is the key that changed.
	cfg, err := Parse(map[string]string{"range-x": "10.7.0.1-10.7.0.5", "cidr-x": "0.0.0.0/32"}, last)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "cidr-x" {
		t.Fatalf("err = %v, want cidr-x blamed", err)
	}
	if p := cfg.PoolFor("x"); p.DHCP() || !p.Contains(netip.MustParseAddr("10.7.0.1")) {
		t.Errorf("pool x: DHCP %v; the unchanged range-x must keep serving", p.DHCP())
	}
}

// A pool all of whose keys are malformed, with no earlier good value to
// stand in, says which keys and values are to blame: NoPool names them.
func TestAMalformedPoolNamesItsKeysAndValues(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		want string
	}{
		{"one key", map[string]string{"cidr-global": "10.0.0.300/24"},
			`NoPool: key "cidr-global" value "10.0.0.300/24" is malformed: entry "10.0.0.300/24": not a CIDR (ADDRESS/BITS) or a range (FROM-TO); no earlier good value`},
		{"both keys of a pool", map[string]string{"cidr-x": "nope", "range-x": "10.0.0.9-10.0.0.1"},
			`NoPool: key "cidr-x" value "nope" is malformed: entry "nope": not a CIDR (ADDRESS/BITS) or a range (FROM-TO); no earlier good value; ` +
				`key "range-x" value "10.0.0.9-10.0.0.1" is malformed: entry "10.0.0.9-10.0.0.1": end 10.0.0.1 is below start 10.0.0.9; no earlier good value`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := Parse(tc.data, nil)
			ns := "x"
			if _, ok := tc.data["cidr-global"]; ok {
				ns = "default"
			}
			_, err := NewUsage().Allocate(cfg, Request{Owner: ns + "/a", Namespace: ns})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant    %s", err, tc.want)
			}
		})
	}
}
