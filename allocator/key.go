package allocator

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
	"net/netip"
	"strconv"
)

// key is a position in the allocatable address space of one family, an index
// that skips the addresses never handed out automatically. For IPv4 it skips
// every address ending in .0 or .255: key = (addr>>8)*254 + (addr&0xff) - 1.
// For IPv6 it skips every address whose low 64 bits are all zero (the
// Subnet-Router anycast address of its /64, RFC 4291 2.6.1; :: among them):
// key = hi*(2^64-1) + lo - 1, where hi and lo are the address's high and low
// 64 bits, a 128-bit number. Because of that gap-free numbering, addresses in
// use on both sides of a /24 (IPv4) or /64 (IPv6) boundary form one run, and
// finding the next free address is a single ordered lookup.
type key struct{ hi, lo uint64 }

func (k key) less(o key) bool { return k.hi < o.hi || (k.hi == o.hi && k.lo < o.lo) }

func (k key) cmp(o key) int {
	switch {
	case k.less(o):
		return -1
	case o.less(k):
		return 1
	}
	return 0
}

// next returns k+1 and false when k is the largest key.
func (k key) next() (key, bool) {
	if k.lo == math.MaxUint64 {
		if k.hi == math.MaxUint64 {
			return k, false
		}
		return key{k.hi + 1, 0}, true
	}
	return key{k.hi, k.lo + 1}, true
}

// prev returns k-1 and false when k is zero.
func (k key) prev() (key, bool) {
	if k.lo == 0 {
		if k.hi == 0 {
			return k, false
		}
		return key{k.hi - 1, math.MaxUint64}, true
	}
	return key{k.hi, k.lo - 1}, true
}

// Count is a non-negative number of addresses. It is 128 bits wide because an
// IPv6 pool can hold more addresses than a uint64 can count.
type Count struct{ hi, lo uint64 }

// countOf returns n as a Count.
func countOf(n uint64) Count { return Count{lo: n} }

// spanLen returns hi-lo+1 for lo <= hi, saturating at the largest Count.
func spanLen(lo, hi key) Count {
	d := Count{hi: hi.hi - lo.hi, lo: hi.lo - lo.lo}
	if hi.lo < lo.lo {
		d.hi--
	}
	return d.Add(Count{lo: 1})
}

// Add returns c+o, saturating at the largest Count.
func (c Count) Add(o Count) Count {
	lo := c.lo + o.lo
	carry := uint64(0)
	if lo < c.lo {
		carry = 1
	}
	hi := c.hi + o.hi + carry
	if hi < c.hi || (carry == 1 && hi == c.hi) {
		return Count{math.MaxUint64, math.MaxUint64}
	}
	return Count{hi, lo}
}

// Sub returns c-o, or zero when o > c.
func (c Count) Sub(o Count) Count {
	if c.hi < o.hi || (c.hi == o.hi && c.lo < o.lo) {
		return Count{}
	}
	lo := c.lo - o.lo
	hi := c.hi - o.hi
	if c.lo < o.lo {
		hi--
	}
	return Count{hi, lo}
}

// isZero reports whether c is zero.
func (c Count) isZero() bool { return c == Count{} }

// asUint64 returns c and whether it fits in a uint64.
func (c Count) asUint64() (uint64, bool) { return c.lo, c.hi == 0 }

// Float64 returns c as a float64 (rounded for very large counts), for metrics.
func (c Count) Float64() float64 { return float64(c.hi)*math.Exp2(64) + float64(c.lo) }

// String returns c in decimal.
func (c Count) String() string {
	if c.hi == 0 {
		return strconv.FormatUint(c.lo, 10)
	}
	b := new(big.Int).SetUint64(c.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(c.lo)).String()
}

// familyOf returns the family of a valid, unmapped address.
func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// v4excluded reports whether an IPv4 address ends in .0 or .255.
func v4excluded(a netip.Addr) bool {
	last := a.As4()[3]
	return last == 0 || last == 255
}

// SubnetRouterAnycast reports whether a is an IPv6 address whose low 64
// bits are all zero: the Subnet-Router anycast address of its /64 (RFC 4291
// 2.6.1), which every router on that link answers. Automatic allocation never
// hands one out (nor ::, the unspecified address); a Service may still
// request one. It is false for IPv4 and IPv4-mapped IPv6 addresses.
func SubnetRouterAnycast(a netip.Addr) bool {
	if !a.Is6() || a.Is4In6() {
		return false
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[8:]) == 0
}

// allocatable reports whether automatic allocation may hand out a: never an
// IPv4 address ending in .0 or .255, nor an IPv6 Subnet-Router anycast
// address (low 64 bits zero), :: included, which Assign does not track (it
// is the DHCP marker's IPv6 twin).
func allocatable(a netip.Addr) bool {
	if a.Is4() {
		return !v4excluded(a)
	}
	return !SubnetRouterAnycast(a)
}

// v6stride is how many allocatable addresses an IPv6 /64 holds: every one
// but the one whose low 64 bits are zero.
const v6stride = math.MaxUint64

// halves returns the high and low 64 bits of an IPv6 address.
func halves(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// v6key returns hi*(2^64-1) + lo, one more than the key of the address
// (hi, lo) when lo is not zero. It never overflows: the largest value,
// (2^64-1)^2 + 2^64-1, is below 2^128.
func v6key(hi, lo uint64) key {
	mh, ml := bits.Mul64(hi, v6stride)
	l, carry := bits.Add64(ml, lo, 0)
	return key{mh + carry, l}
}

// keyOf returns the key of an allocatable address.
func keyOf(a netip.Addr) key {
	if a.Is4() {
		b := a.As4()
		u := uint64(binary.BigEndian.Uint32(b[:]))
		return key{lo: (u>>8)*254 + (u & 0xff) - 1}
	}
	k, _ := v6key(halves(a)).prev() // lo is not zero: k is not zero
	return k
}

// addrOf is the inverse of keyOf.
func addrOf(f Family, k key) netip.Addr {
	if f == IPv4 {
		u := uint32(k.lo/254)<<8 | uint32(k.lo%254+1)
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], u)
		return netip.AddrFrom4(b)
	}
	// k = hi*(2^64-1) + lo-1. As 2^64 = v6stride+1, k = k.hi*v6stride +
	// (k.hi+k.lo), and k.hi+k.lo < 2*v6stride (k.hi <= 2^64-2, see
	// v6key): the quotient is k.hi or k.hi+1, without a division.
	sum, carry := bits.Add64(k.hi, k.lo, 0)
	hi, rem := k.hi, sum
	switch {
	case carry == 1: // k.hi+k.lo = 2^64+sum = v6stride + sum+1
		hi, rem = k.hi+1, sum+1
	case sum == v6stride:
		hi, rem = k.hi+1, 0
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], rem+1)
	return netip.AddrFrom16(b)
}

// spanOf returns the keys of the allocatable addresses in the inclusive
// address range [from, to] of one family, and false when there are none.
func spanOf(from, to netip.Addr) (lo, hi key, ok bool) {
	if !from.Is4() {
		// v6key is key+1 of an allocatable address; of a Subnet-Router
		// anycast address (hi, 0) it is key+1 of (hi-1, 2^64-1), the
		// allocatable address just below it.
		fh, fl := halves(from)
		lo = v6key(fh, fl)
		if fl != 0 {
			lo, _ = lo.prev()
		}
		hi, ok = v6key(halves(to)).prev()
		if !ok || hi.less(lo) {
			return key{}, key{}, false
		}
		return lo, hi, true
	}
	f, t := from.As4(), to.As4()
	fq := uint64(binary.BigEndian.Uint32(f[:])) >> 8
	tq := uint64(binary.BigEndian.Uint32(t[:])) >> 8
	var l, h int64
	switch f[3] {
	case 0:
		l = int64(fq * 254)
	case 255:
		l = int64((fq + 1) * 254)
	default:
		l = int64(fq*254 + uint64(f[3]) - 1)
	}
	switch t[3] {
	case 255:
		h = int64(tq*254 + 253)
	case 0:
		h = int64(tq*254) - 1
	default:
		h = int64(tq*254 + uint64(t[3]) - 1)
	}
	if h < l {
		return key{}, key{}, false
	}
	return key{lo: uint64(l)}, key{lo: uint64(h)}, true
}
