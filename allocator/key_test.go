package allocator

import (
	"math"
	"net/netip"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	for _, s := range []string{"0.0.0.1", "10.0.0.1", "10.0.0.254", "10.0.1.1", "255.255.255.254", "::1", "2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff", "2001:db8:0:1::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
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
	// So are those of IPv6 addresses on both sides of a Subnet-Router
	// anycast address; ::1 is the first key.
	k1, k2 = keyOf(netip.MustParseAddr("2001:db8::ffff:ffff:ffff:ffff")), keyOf(netip.MustParseAddr("2001:db8:0:1::1"))
	if n, _ := k1.next(); n != k2 {
		t.Errorf("keys of 2001:db8::ffff:ffff:ffff:ffff and 2001:db8:0:1::1 are not adjacent: %v %v", k1, k2)
	}
	if k := keyOf(netip.MustParseAddr("::1")); k != (key{}) {
		t.Errorf("keyOf(::1) = %v, want 0", k)
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
		{"2001:db8::", "2001:db8::ff", 255},
		{"::", "::", 0},
		{"::", "::ff", 255},
		{"2001:db8:0:1::", "2001:db8:0:1::", 0},
		{"2001:db8:0:1::", "2001:db8:0:1::1", 1},
		{"2001:db8::ffff:ffff:ffff:ffff", "2001:db8:0:1::", 1},
		{"2001:db8::ffff:ffff:ffff:fffe", "2001:db8:0:1::ffff", 2 + 0xffff},
		{"2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff", 1<<64 - 1},
	}
	for _, tc := range tests {
		lo, hi, ok := spanOf(netip.MustParseAddr(tc.from), netip.MustParseAddr(tc.to))
		if tc.n == 0 {
			if ok {
				t.Errorf("spanOf(%s, %s) = %v..%v, want none", tc.from, tc.to, lo, hi)
			}
			continue
		}
		if !ok || spanLen(lo, hi) != countOf(tc.n) {
			t.Errorf("spanOf(%s, %s): %d addresses (ok %v), want %d", tc.from, tc.to, spanLen(lo, hi).lo, ok, tc.n)
		}
	}
}

func TestSpanOfAllIPv6(t *testing.T) {
	// Every IPv6 address but the 2^64 whose low 64 bits are zero (:: among
	// them): 2^128-2^64, exactly.
	lo, hi, ok := spanOf(netip.IPv6Unspecified(), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
	if !ok || lo != (key{}) || spanLen(lo, hi) != (Count{hi: math.MaxUint64}) {
		t.Errorf("spanOf(::/0) = %v..%v (%v), want every address but the Subnet-Router anycast ones", lo, hi, spanLen(lo, hi))
	}
}

func TestCount(t *testing.T) {
	max := Count{math.MaxUint64, math.MaxUint64}
	if got := countOf(math.MaxUint64).Add(countOf(1)); got != (Count{hi: 1}) {
		t.Errorf("carry: %v", got)
	}
	if got := max.Add(countOf(1)); got != max {
		t.Errorf("Add must saturate: %v", got)
	}
	if got := (Count{hi: 1}).Sub(countOf(1)); got != countOf(math.MaxUint64) {
		t.Errorf("borrow: %v", got)
	}
	if got := countOf(1).Sub(countOf(2)); !got.isZero() {
		t.Errorf("Sub below zero = %v, want 0", got)
	}
	if s := (Count{hi: 1}).String(); s != "18446744073709551616" {
		t.Errorf("String = %s", s)
	}
	if f := (Count{hi: 1}).Float64(); f != math.Exp2(64) {
		t.Errorf("Float64 = %v", f)
	}
	if v, ok := countOf(7).asUint64(); !ok || v != 7 {
		t.Errorf("Uint64 = %v %v", v, ok)
	}
	cfg := mustParse(t, map[string]string{"cidr-global": "2001:db8::/32"})
	if got := cfg.PoolFor("x").Size(IPv6).String(); got != "79228162514264337589248983040" {
		t.Errorf("size of a /32 = %s, want 2^96-2^32 (one Subnet-Router anycast address per /64)", got)
	}
}
