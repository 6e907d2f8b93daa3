package allocator

import (
	"math"
	"net/netip"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	for _, s := range []string{"0.0.0.1", "10.0.0.1", "10.0.0.254", "10.0.1.1", "255.255.255.254", "::", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		a := netip.MustParseAddr(s)
		if got := addrOf(familyOf(a), keyOf(a)); got != a {
			t.Errorf("addrOf(keyOf(%s)) = %s", a, got)
		}
	}
	// Keys of IPv4 addresses on both sides of a .255/.0 gap are adjacent.
	k1, k2 := keyOf(netip.MustParseAddr("10.0.0.254")), keyOf(netip.MustParseAddr("10.0.1.1"))
	if n, _ := k1.next(); n != k2 {
		t.Errorf("keys of 10.0.0.254 and 10.0.1.1 are not adjacent: %v %v", k1, k2)
	}
}

func TestSpanOf(t *testing.T) {
	tests := []struct {
		from, to string
		n        uint64 // allocatable addresses, 0 = none
	}{
		{"10.0.0.0", "10.0.0.255", 254},
		{"10.0.0.255", "10.0.1.0", 0},
		{"10.0.0.0", "10.0.0.0", 0},
		{"0.0.0.0", "0.0.0.0", 0},
		{"255.255.255.255", "255.255.255.255", 0},
		{"10.0.0.254", "10.0.1.1", 2},
		{"0.0.0.0", "255.255.255.255", 256 * 256 * 256 * 254},
		{"2001:db8::", "2001:db8::ff", 256},
		{"::", "::", 0},
		{"::", "::ff", 255},
	}
	for _, tc := range tests {
		lo, hi, ok := spanOf(netip.MustParseAddr(tc.from), netip.MustParseAddr(tc.to))
		if tc.n == 0 {
			if ok {
				t.Errorf("spanOf(%s, %s) = %v..%v, want none", tc.from, tc.to, lo, hi)
			}
			continue
		}
		if !ok || spanLen(lo, hi) != CountOf(tc.n) {
			t.Errorf("spanOf(%s, %s): %d addresses (ok %v), want %d", tc.from, tc.to, spanLen(lo, hi).lo, ok, tc.n)
		}
	}
}

func TestSpanOfAllIPv6(t *testing.T) {
	// Every IPv6 address but :: is 2^128-1, the largest Count, exactly.
	lo, hi, ok := spanOf(netip.IPv6Unspecified(), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
	if !ok || lo != (key{lo: 1}) || spanLen(lo, hi) != (Count{math.MaxUint64, math.MaxUint64}) {
		t.Errorf("spanOf(::/0) = %v..%v (%v), want every address but ::", lo, hi, spanLen(lo, hi))
	}
}

func TestCount(t *testing.T) {
	max := Count{math.MaxUint64, math.MaxUint64}
	if got := CountOf(math.MaxUint64).Add(CountOf(1)); got != (Count{hi: 1}) {
		t.Errorf("carry: %v", got)
	}
	if got := max.Add(CountOf(1)); got != max {
		t.Errorf("Add must saturate: %v", got)
	}
	if got := (Count{hi: 1}).Sub(CountOf(1)); got != CountOf(math.MaxUint64) {
		t.Errorf("borrow: %v", got)
	}
	if got := CountOf(1).Sub(CountOf(2)); !got.IsZero() {
		t.Errorf("Sub below zero = %v, want 0", got)
	}
	if s := (Count{hi: 1}).String(); s != "18446744073709551616" {
		t.Errorf("String = %s", s)
	}
	if f := (Count{hi: 1}).Float64(); f != math.Exp2(64) {
		t.Errorf("Float64 = %v", f)
	}
	if v, ok := CountOf(7).Uint64(); !ok || v != 7 {
		t.Errorf("Uint64 = %v %v", v, ok)
	}
	cfg := mustParse(t, map[string]string{"cidr-global": "2001:db8::/32"})
	if got := cfg.PoolFor("x").Size(IPv6).String(); got != "79228162514264337593543950336" {
		t.Errorf("size of a /32 = %s, want 2^96", got)
	}
}
