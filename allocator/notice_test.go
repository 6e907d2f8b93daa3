package allocator

import (
	"errors"
	"strings"
	"testing"
)

// TestNotices: every key the existing provider understands is taken
// silently; any other is reported once, with the known key it is most
// likely a typo of; a CIDR with host bits is reported with the range it
// really means.
func TestNotices(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string]string
		want []string // Notice.String() of each, in order
	}{
		{"every known key", map[string]string{"cidr-global": "10.0.0.0/24", "range-a": "10.1.0.1-10.1.0.9", "cidr-b": "10.2.0.0/30",
			"range-b": "10.2.0.8/30", "allow-share-a": "true", "allow-share-global": "false", "interface-a": "eth1", "interface-global": "eth0",
			KeySearchOrder: "desc", KeySkipEndIPs: "true"}, nil},
		{"no dash after the prefix", map[string]string{"cidrglobal": "10.0.0.0/24"},
			[]string{`key "cidrglobal" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "cidr-global"?)`}},
		{"an underscore for a dash", map[string]string{"allow_share-x": "true"},
			[]string{`key "allow_share-x" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "allow-share-x"?)`}},
		{"two letters swapped", map[string]string{"serach-order": "desc", "cdir-x": "10.0.0.0/30", "rnage-y": "10.0.0.1-10.0.0.2"},
			[]string{`key "cdir-x" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "cidr-x"?)`,
				`key "rnage-y" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "range-y"?)`,
				`key "serach-order" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "search-order"?)`}},
		{"another case", map[string]string{"Search-Order": "desc"},
			[]string{`key "Search-Order" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "search-order"?)`}},
		{"nothing close", map[string]string{"colour": "blue", "cidr-": "10.0.0.0/24"},
			[]string{`key "cidr-" is not one kube-vip-cloud-provider understands: it is ignored`,
				`key "colour" is not one kube-vip-cloud-provider understands: it is ignored`}},
		{"host bits", map[string]string{"cidr-finance": "192.168.0.220/29, 192.168.0.230/29,192.168.0.220/29", "cidr-global": "192.168.0.216/29"},
			[]string{`cidr-finance: entry "192.168.0.220/29" has host bits set: it is read as 192.168.0.216/29, that is 192.168.0.216-192.168.0.223`,
				`cidr-finance: entry "192.168.0.230/29" has host bits set: it is read as 192.168.0.224/29, that is 192.168.0.224-192.168.0.231`}},
		{"host bits, ends skipped", map[string]string{"cidr-x": "192.168.0.220/29", KeySkipEndIPs: "true"},
			[]string{`cidr-x: entry "192.168.0.220/29" has host bits set: it is read as 192.168.0.216/29, that is 192.168.0.217-192.168.0.222 (skip-end-ips-in-cidr)`}},
		{"host bits in a range key and in IPv6", map[string]string{"range-x": "10.0.0.5/30", "cidr-y": "2001:db8::5/64"},
			[]string{`cidr-y: entry "2001:db8::5/64" has host bits set: it is read as 2001:db8::/64, that is 2001:db8::-2001:db8::ffff:ffff:ffff:ffff`,
				`range-x: entry "10.0.0.5/30" has host bits set: it is read as 10.0.0.4/30, that is 10.0.0.4-10.0.0.7`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(tc.data, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range cfg.Notices() {
				got = append(got, n.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("notices\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// The masking itself stays, as users of the existing provider rely on it:
// 192.168.0.220/29 serves .216-.223.
func TestHostBitsAreMasked(t *testing.T) {
	cfg := mustParse(t, map[string]string{"cidr-global": "192.168.0.220/29"})
	if got := cfg.PoolFor("x").Ranges(); len(got) != 1 || got[0].String() != "192.168.0.216-192.168.0.223" {
		t.Errorf("ranges %v, want 192.168.0.216-192.168.0.223", got)
	}
}

// A value that is malformed now keeps its last good value, whose notices
// were told when it was new: none again.
func TestNoNoticesForAKeptValue(t *testing.T) {
	last := mustParse(t, map[string]string{"cidr-x": "10.0.0.5/30"})
	cfg, err := Parse(map[string]string{"cidr-x": "10.0.0.5/33"}, last)
	if err == nil || len(cfg.Notices()) != 0 {
		t.Fatalf("err %v, notices %v: want the error and no notice", err, cfg.Notices())
	}
}

// 0.0.0.0-0.0.0.0 is not DHCP (that is 0.0.0.0/32), nor an empty pool to
// be reported as exhausted: it is malformed.
func TestAZeroRangeIsNotDHCP(t *testing.T) {
	for _, key := range []string{"range-x", "cidr-x"} {
		cfg, err := Parse(map[string]string{key: "0.0.0.0-0.0.0.0"}, nil)
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != key || ke.Entry != "0.0.0.0-0.0.0.0" || !strings.Contains(err.Error(), "not DHCP: for DHCP, write 0.0.0.0/32") {
			t.Fatalf("%s: err %v, want a KeyError naming the entry and 0.0.0.0/32", key, err)
		}
		if p := cfg.PoolFor("x"); p == nil || p.invalid == "" {
			t.Errorf("%s: the pool should be invalid (NoPool), not empty", key)
		}
	}
	// The written form still is DHCP, in either key, and a range that
	// merely starts at 0.0.0.0 is addresses.
	for _, data := range []map[string]string{{"range-x": "0.0.0.0/32"}, {"cidr-x": "0.0.0.0/32"}} {
		if cfg := mustParse(t, data); !cfg.PoolFor("x").DHCP() {
			t.Errorf("%v is DHCP", data)
		}
	}
	if cfg := mustParse(t, map[string]string{"range-x": "0.0.0.0-0.0.0.2"}); cfg.PoolFor("x").Size(IPv4) != countOf(2) {
		t.Errorf("0.0.0.0-0.0.0.2: size %v, want 2", cfg.PoolFor("x").Size(IPv4))
	}
}

// Without a ConfigMap, every automatic allocation says so.
func TestMissingConfigMapIsNamedInNoPool(t *testing.T) {
	cfg := Missing("ConfigMap kube-system/kubevip not found")
	_, err := NewUsage().Allocate(cfg, Request{Owner: "d/a", Namespace: "d"})
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != ReasonNoPool || err.Error() != "NoPool: ConfigMap kube-system/kubevip not found" {
		t.Fatalf("err %v, want NoPool naming the missing ConfigMap", err)
	}
	_, err = NewUsage().Allocate(mustParse(t, map[string]string{}), Request{Owner: "d/a", Namespace: "d"})
	if err == nil || err.Error() != `NoPool: no pool for namespace "d" and no global pool` {
		t.Fatalf("an empty ConfigMap: %v", err)
	}
}
