package allocator

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func mustParse(t testing.TB, data map[string]string) *Config {
	t.Helper()
	cfg, err := Parse(data, nil)
	if err != nil {
		t.Fatalf("Parse(%v): %v", data, err)
	}
	return cfg
}

func tcp(ports ...int32) []Port {
	out := make([]Port, len(ports))
	for i, p := range ports {
		out[i] = Port{Number: p, Protocol: "TCP"}
	}
	return out
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// holding is a shorthand for tests: owner "ns/name", ports, addresses.
func holding(owner string, ports []Port, addrs ...string) Holding {
	ns, _, _ := strings.Cut(owner, "/")
	h := Holding{Owner: owner, Namespace: ns, Ports: ports}
	for _, a := range addrs {
		h.Addrs = append(h.Addrs, netip.MustParseAddr(a))
	}
	return h
}

func contested(h Holding) Holding { h.Contested = true; return h }

func onlyAsks(h Holding) Holding { h.OnlyAsks = true; return h }

func exclusive(h Holding) Holding { h.Exclusive = true; return h }

func TestAllocate(t *testing.T) {
	v4 := map[string]string{"cidr-global": "192.168.0.200/29"}
	dual := map[string]string{"range-global": "10.0.0.1-10.0.0.2,2001:db8::1-2001:db8::2"}
	tests := []struct {
		name    string
		config  map[string]string
		held    []Holding
		req     Request
		want    string // addresses, comma-separated
		shared  string
		outside string
		reason  Reason // expected error
	}{
		{name: "lowest first", config: v4, req: Request{Owner: "d/a", Namespace: "d"}, want: "192.168.0.200"},
		{name: "skips held", config: v4, held: []Holding{holding("d/x", tcp(80), "192.168.0.200"), holding("d/y", tcp(80), "192.168.0.201")},
			req: Request{Owner: "d/a", Namespace: "d"}, want: "192.168.0.202"},
		{name: "desc hands out from the top", config: map[string]string{"cidr-global": "192.168.0.200/29", KeySearchOrder: "desc"},
			held: []Holding{holding("d/x", nil, "192.168.0.207")}, req: Request{Owner: "d/a", Namespace: "d"}, want: "192.168.0.206"},
		{name: "never .0 or .255", config: map[string]string{"range-global": "10.0.0.254-10.0.1.1"},
			held: []Holding{holding("d/x", nil, "10.0.0.254")}, req: Request{Owner: "d/a", Namespace: "d"}, want: "10.0.1.1"},
		{name: "desc never .255", config: map[string]string{"cidr-global": "10.0.0.0/24", KeySearchOrder: "desc"},
			req: Request{Owner: "d/a", Namespace: "d"}, want: "10.0.0.254"},
		{name: "exhausted", config: map[string]string{"range-global": "10.0.0.255-10.0.1.1"}, held: []Holding{holding("d/x", nil, "10.0.1.1")},
			req: Request{Owner: "d/a", Namespace: "d"}, reason: ReasonExhausted},
		{name: "no pool", config: map[string]string{"cidr-other": "10.0.0.0/30"}, req: Request{Owner: "d/a", Namespace: "d"}, reason: ReasonNoPool},
		{name: "invalid pool", config: map[string]string{"cidr-d": "10.0.0.0/30"}, req: Request{Owner: "d/a", Namespace: "e"}, reason: ReasonNoPool},
		{name: "DHCP", config: map[string]string{"cidr-global": "0.0.0.0/32"}, held: []Holding{holding("d/x", nil, "0.0.0.0")},
			req: Request{Owner: "d/a", Namespace: "d"}, want: "0.0.0.0"},
		{name: "single-stack IPv6", config: dual, req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv6}}, want: "2001:db8::1"},
		{name: "no families: IPv4 first", config: dual, req: Request{Owner: "d/a", Namespace: "d"}, want: "10.0.0.1"},
		{name: "no families, IPv6-only pool", config: map[string]string{"cidr-global": "2001:db8::/127"}, req: Request{Owner: "d/a", Namespace: "d"}, want: "2001:db8::1"},
		{name: "an IPv6 pool of only a Subnet-Router anycast address is exhausted", config: map[string]string{"cidr-global": "2001:db8:0:5::/128"},
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv6}}, reason: ReasonExhausted},
		{name: "single-stack family missing", config: v4, req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv6}}, reason: ReasonFamilyUnavailable},
		{name: "require dual-stack, request order", config: dual,
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv6, IPv4}, Policy: RequireDualStack}, want: "2001:db8::1,10.0.0.1"},
		{name: "prefer dual-stack", config: dual,
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv4, IPv6}, Policy: PreferDualStack}, want: "10.0.0.1,2001:db8::1"},
		{name: "prefer dual-stack falls back to one family", config: v4,
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv4, IPv6}, Policy: PreferDualStack}, want: "192.168.0.200"},
		{name: "prefer dual-stack, first family exhausted", config: dual, held: []Holding{holding("d/x", nil, "10.0.0.1", "10.0.0.2")},
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv4, IPv6}, Policy: PreferDualStack}, want: "2001:db8::1"},
		{name: "require dual-stack, family missing", config: v4,
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv4, IPv6}, Policy: RequireDualStack}, reason: ReasonFamilyUnavailable},
		{name: "require dual-stack, one family exhausted", config: dual, held: []Holding{holding("d/x", nil, "2001:db8::1", "2001:db8::2")},
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv4, IPv6}, Policy: RequireDualStack}, reason: ReasonExhausted},
		{name: "family listed twice", config: dual, req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv4, IPv4}}, reason: ReasonInvalidRequest},
		{name: "unknown policy", config: dual, req: Request{Owner: "d/a", Namespace: "d", Policy: "Sometimes"}, reason: ReasonInvalidRequest},

		// Sharing.
		{name: "share when ports differ", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{holding("d/x", tcp(80), "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.1", shared: "10.0.0.1"},
		{name: "TCP 53 and UDP 53 share", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{holding("d/x", []Port{{53, "UDP"}}, "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: []Port{{53, "TCP"}}}, want: "10.0.0.1", shared: "10.0.0.1"},
		{name: "no share on a port collision", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{holding("d/x", tcp(80, 443), "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "no share without permission", config: map[string]string{"cidr-global": "10.0.0.0/29"},
			held: []Holding{holding("d/x", tcp(80), "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "no share when the holder's namespace forbids it", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-d": "true", "allow-share-e": "false"},
			held: []Holding{holding("e/x", tcp(80), "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "a Service without ports never shares", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{holding("d/x", tcp(80), "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d"}, want: "10.0.0.2"},
		{name: "a holder without ports never shares", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{holding("d/x", nil, "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(80)}, want: "10.0.0.2"},
		{name: "share only inside the requester's pool", config: map[string]string{"cidr-global": "10.0.0.0/29", "range-d": "10.0.0.5-10.0.0.6", "allow-share-global": "true"},
			held: []Holding{holding("e/x", tcp(80), "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.5"},
		{name: "no share with a holder of another pool, even where the pools overlap", config: map[string]string{"cidr-global": "10.0.0.0/29", "range-d": "10.0.0.1-10.0.0.3", "allow-share-global": "true"},
			held: []Holding{holding("e/x", tcp(80), "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "share with a holder of the same namespace pool", config: map[string]string{"cidr-global": "10.0.0.0/29", "range-d": "10.0.0.1-10.0.0.3", "allow-share-global": "true"},
			held: []Holding{holding("e/x", tcp(80), "10.0.0.1"), holding("d/y", tcp(80), "10.0.0.2")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2", shared: "10.0.0.2"},
		{name: "lowest shareable wins", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{holding("d/x", tcp(80), "10.0.0.1"), holding("d/y", tcp(81), "10.0.0.2"), holding("d/z", tcp(82), "10.0.0.3")},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(80)}, want: "10.0.0.2", shared: "10.0.0.2"},

		{name: "share an address two compatible Services hold", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{holding("d/x", tcp(80), "10.0.0.1"), holding("e/y", tcp(81), "10.0.0.1")},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(82)}, want: "10.0.0.1", shared: "10.0.0.1"},
		{name: "no share when one of two holders collides", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{holding("d/x", tcp(80), "10.0.0.1"), holding("e/y", tcp(81), "10.0.0.1")},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(81)}, want: "10.0.0.2"},
		{name: "SCTP and TCP on one number share", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{holding("d/x", []Port{{9, "SCTP"}}, "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(9)}, want: "10.0.0.1", shared: "10.0.0.1"},
		{name: "no share when the requester's namespace forbids it", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true", "allow-share-d": "false"},
			held: []Holding{holding("e/x", tcp(80), "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "share across namespaces of the global pool", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-d": "true", "allow-share-e": "true"},
			held: []Holding{holding("e/x", tcp(80), "10.0.0.1")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.1", shared: "10.0.0.1"},
		{name: "a shareable .255 is never shared", config: map[string]string{"range-global": "10.0.0.254-10.0.1.1", "allow-share-global": "true"},
			held: []Holding{holding("d/x", tcp(80), "10.0.0.255")}, req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.254"},
		{name: "sharing is lowest first even with desc", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true", KeySearchOrder: "desc"},
			held: []Holding{holding("d/x", tcp(80), "10.0.0.2"), holding("d/y", tcp(80), "10.0.0.5")},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2", shared: "10.0.0.2"},

		// A contested holder (it carries an address another held first).
		{name: "the first holder keeps an address a later Service contests", config: map[string]string{"cidr-global": "10.0.0.0/29"},
			held: []Holding{holding("d/first", tcp(80), "10.0.0.1"), contested(holding("d/later", tcp(80), "10.0.0.1"))},
			req:  Request{Owner: "d/first", Namespace: "d", Ports: tcp(80), Requested: addrs("10.0.0.1"), Carries: true}, want: "10.0.0.1"},
		{name: "the later one stays in conflict with the first", config: map[string]string{"cidr-global": "10.0.0.0/29"},
			held: []Holding{holding("d/first", tcp(80), "10.0.0.1"), contested(holding("d/later", tcp(80), "10.0.0.1"))},
			req:  Request{Owner: "d/later", Namespace: "d", Ports: tcp(80), Requested: addrs("10.0.0.1"), Carries: true}, reason: ReasonConflict},
		{name: "a fresh request conflicts with a contested holder", config: map[string]string{"cidr-global": "10.0.0.0/29"},
			held: []Holding{contested(holding("d/later", tcp(80), "10.0.0.1"))},
			req:  Request{Owner: "d/new", Namespace: "d", Ports: tcp(80), Requested: addrs("10.0.0.1")}, reason: ReasonConflict},
		{name: "a fresh request does not conflict with a contested holder that only asks too", config: map[string]string{"cidr-global": "10.0.0.0/29"},
			held: []Holding{onlyAsks(contested(holding("d/asks", tcp(80), "10.0.0.1")))},
			req:  Request{Owner: "d/new", Namespace: "d", Ports: tcp(80), Requested: addrs("10.0.0.1")}, want: "10.0.0.1"},
		{name: "beside a holder it may share with, that only asker is passed over", config: map[string]string{"cidr-global": "10.0.0.0/29"},
			held: []Holding{holding("d/first", tcp(443), "10.0.0.1"), onlyAsks(contested(holding("d/asks", tcp(80), "10.0.0.1")))},
			req:  Request{Owner: "d/new", Namespace: "d", Ports: tcp(80), Requested: addrs("10.0.0.1")}, want: "10.0.0.1", shared: "10.0.0.1"},
		{name: "an exclusive contested holder that only asks still conflicts", config: map[string]string{"cidr-global": "10.0.0.0/29"},
			held: []Holding{exclusive(onlyAsks(contested(holding("d/asks", tcp(80), "10.0.0.1"))))},
			req:  Request{Owner: "d/new", Namespace: "d", Ports: tcp(443), Requested: addrs("10.0.0.1")}, reason: ReasonConflict},
		{name: "an address a contested holder only asks for is not handed out", config: map[string]string{"range-global": "10.0.0.1-10.0.0.2"},
			held: []Holding{onlyAsks(contested(holding("d/asks", tcp(80), "10.0.0.1")))},
			req:  Request{Owner: "d/new", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "a contested address is neither handed out nor shared", config: map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"},
			held: []Holding{contested(holding("d/later", tcp(80), "10.0.0.1"))},
			req:  Request{Owner: "d/new", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},

		// Dual-stack, more.
		{name: "require dual-stack, no families: IPv4 then IPv6", config: dual,
			req: Request{Owner: "d/a", Namespace: "d", Policy: RequireDualStack}, want: "10.0.0.1,2001:db8::1"},
		{name: "prefer dual-stack, IPv6 first, IPv4-only pool", config: v4,
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv6, IPv4}, Policy: PreferDualStack}, want: "192.168.0.200"},
		{name: "prefer dual-stack, both exhausted", config: dual, held: []Holding{holding("d/x", nil, "10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2")},
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv4, IPv6}, Policy: PreferDualStack}, reason: ReasonExhausted},
		{name: "dual-stack from a mixed CIDR list", config: map[string]string{"cidr-global": "192.168.0.200/30,2001:db8::/126"},
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv6, IPv4}, Policy: PreferDualStack}, want: "2001:db8::1,192.168.0.200"},
		{name: "unknown family", config: dual, req: Request{Owner: "d/a", Namespace: "d", Families: []Family{5}}, reason: ReasonInvalidRequest},
		{name: "DHCP: RequireDualStack cannot be met (the marker is IPv4)", config: map[string]string{"cidr-global": "0.0.0.0/32"},
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv4, IPv6}, Policy: RequireDualStack}, reason: ReasonFamilyUnavailable},
		{name: "DHCP: an IPv6 SingleStack request cannot be met", config: map[string]string{"cidr-global": "0.0.0.0/32"},
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv6}}, reason: ReasonFamilyUnavailable},
		{name: "DHCP: PreferDualStack settles for the IPv4 marker", config: map[string]string{"cidr-global": "0.0.0.0/32"},
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv6, IPv4}, Policy: PreferDualStack}, want: "0.0.0.0"},
		{name: "DHCP: IPv4 SingleStack gets the marker", config: map[string]string{"cidr-global": "0.0.0.0/32"},
			req: Request{Owner: "d/a", Namespace: "d", Families: []Family{IPv4}}, want: "0.0.0.0"},
		{name: "an exclusive (unmanaged) holder is never shared", config: map[string]string{"range-global": "10.0.0.1-10.0.0.2", "allow-share-global": "true"},
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Addrs: addrs("10.0.0.1"), Exclusive: true}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "an exclusive holder conflicts with a request, whatever the ports", config: v4,
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Addrs: addrs("192.168.0.203"), Exclusive: true}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(443), Requested: addrs("192.168.0.203")}, reason: ReasonConflict},
		{name: "an address a Service is only served on (Also) is not handed out", config: map[string]string{"range-global": "10.0.0.1-10.0.0.2", "allow-share-global": "true"},
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Also: addrs("10.0.0.1")}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "an Also address yields to a Service that carries it", config: v4,
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Also: addrs("192.168.0.203")}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(80), Requested: addrs("192.168.0.203"), Carries: true}, want: "192.168.0.203"},
		{name: "an Also address refuses a fresh request on the same port", config: v4,
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Also: addrs("192.168.0.203")}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(80), Requested: addrs("192.168.0.203")}, reason: ReasonConflict},
		{name: "an Also address of an exclusive holder refuses any fresh request", config: v4,
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Also: addrs("192.168.0.203"), Exclusive: true}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(443), Requested: addrs("192.168.0.203")}, reason: ReasonConflict},
		{name: "DHCP in a namespace, addresses for the rest", config: map[string]string{"cidr-global": "10.0.0.0/30", "cidr-d": "0.0.0.0/32"},
			req: Request{Owner: "e/a", Namespace: "e"}, want: "10.0.0.1"},
		{name: "a namespace whose only key is bad does not fall back to global", config: map[string]string{"cidr-global": "10.0.0.0/30", "cidr-d": "10.1.0.0/99"},
			req: Request{Owner: "d/a", Namespace: "d"}, reason: ReasonNoPool},
		{name: "IPv4 .0/.255 across a /24 boundary", config: map[string]string{"range-global": "10.0.0.250-10.0.1.5"},
			held: []Holding{holding("d/x", nil, "10.0.0.250", "10.0.0.251", "10.0.0.252", "10.0.0.253", "10.0.0.254")},
			req:  Request{Owner: "d/a", Namespace: "d"}, want: "10.0.1.1"},
		{name: "IPv4 .0/.255 across a /24 boundary, desc", config: map[string]string{"range-global": "10.0.0.250-10.0.1.5", KeySearchOrder: "desc"},
			held: []Holding{holding("d/x", nil, "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5")},
			req:  Request{Owner: "d/a", Namespace: "d"}, want: "10.0.0.254"},

		// Requested addresses.
		{name: "requested in another namespace's pool is outside", config: map[string]string{"cidr-global": "10.0.0.0/30", "cidr-e": "10.1.0.0/30"},
			req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("10.1.0.1")}, want: "10.1.0.1", outside: "10.1.0.1"},
		{name: "requested IPv4-mapped is IPv4", config: v4, req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("::ffff:192.168.0.201")}, want: "192.168.0.201"},
		{name: "requested invalid address", config: v4, req: Request{Owner: "d/a", Namespace: "d", Requested: []netip.Addr{{}}}, reason: ReasonInvalidRequest},
		{name: "requested address with a zone", config: v4, req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("fe80::1%eth0")}, reason: ReasonInvalidRequest},
		{name: "requested, held by a Service in another namespace on other ports", config: v4, held: []Holding{holding("e/x", tcp(80), "192.168.0.203")},
			req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443), Requested: addrs("192.168.0.203")}, want: "192.168.0.203", shared: "192.168.0.203"},
		{name: "requested TCP 53 beside UDP 53", config: v4, held: []Holding{holding("d/x", []Port{{53, "UDP"}}, "192.168.0.203")},
			req: Request{Owner: "d/a", Namespace: "d", Ports: []Port{{53, "TCP"}}, Requested: addrs("192.168.0.203")}, want: "192.168.0.203", shared: "192.168.0.203"},
		{name: "requested without ports, held by a Service with ports", config: v4, held: []Holding{holding("d/x", tcp(80), "192.168.0.203")},
			req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("192.168.0.203")}, reason: ReasonConflict},
		{name: "requested in a namespace whose pool is invalid", config: map[string]string{"cidr-d": "nonsense"},
			req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("10.0.0.1")}, want: "10.0.0.1", outside: "10.0.0.1"},
		{name: "requested dual-stack, one conflicts", config: dual, held: []Holding{holding("d/x", nil, "2001:db8::2")},
			req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("10.0.0.2", "2001:db8::2")}, reason: ReasonConflict},
		{name: "requested free address", config: v4, req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("192.168.0.203")}, want: "192.168.0.203"},
		{name: "requested .0 is allowed", config: map[string]string{"cidr-global": "10.0.0.0/24"}, req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("10.0.0.0")}, want: "10.0.0.0"},
		{name: "requested outside every pool", config: v4, req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("203.0.113.1")},
			want: "203.0.113.1", outside: "203.0.113.1"},
		{name: "requested with no pool at all", config: map[string]string{}, req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("203.0.113.1")},
			want: "203.0.113.1", outside: "203.0.113.1"},
		{name: "requested, held on the same port", config: v4, held: []Holding{holding("d/x", tcp(80), "192.168.0.203")},
			req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(80), Requested: addrs("192.168.0.203")}, reason: ReasonConflict},
		{name: "requested, held on other ports", config: v4, held: []Holding{holding("d/x", tcp(80), "192.168.0.203")},
			req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443), Requested: addrs("192.168.0.203")}, want: "192.168.0.203", shared: "192.168.0.203"},
		{name: "requested, held by a Service without ports", config: v4, held: []Holding{holding("d/x", nil, "192.168.0.203")},
			req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(443), Requested: addrs("192.168.0.203")}, reason: ReasonConflict},
		{name: "requested, held by itself", config: v4, held: []Holding{holding("d/a", tcp(80), "192.168.0.203")},
			req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(80), Requested: addrs("192.168.0.203")}, want: "192.168.0.203"},
		{name: "requested dual-stack", config: dual, req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("2001:db8::2", "10.0.0.2")}, want: "2001:db8::2,10.0.0.2"},
		{name: "requested two of one family", config: dual, req: Request{Owner: "d/a", Namespace: "d", Requested: addrs("10.0.0.1", "10.0.0.2")}, reason: ReasonInvalidRequest},
		{name: "a releasing holder blocks automatic allocation", config: map[string]string{"range-global": "10.0.0.1-10.0.0.2"},
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Addrs: addrs("10.0.0.1"), Releasing: true}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "a releasing holder is never shared", config: map[string]string{"range-global": "10.0.0.1-10.0.0.2", "allow-share-global": "true"},
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Addrs: addrs("10.0.0.1"), Releasing: true}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(443)}, want: "10.0.0.2"},
		{name: "a releasing holder does not conflict with a Service granted the address", config: v4,
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Addrs: addrs("192.168.0.203"), Releasing: true}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(80), Requested: addrs("192.168.0.203"), Granted: true}, want: "192.168.0.203"},
		{name: "a fresh request for an address on its way out waits", config: v4,
			held: []Holding{{Owner: "d/x", Namespace: "d", Ports: tcp(80), Addrs: addrs("192.168.0.203"), Releasing: true}},
			req:  Request{Owner: "d/a", Namespace: "d", Ports: tcp(443), Requested: addrs("192.168.0.203")}, reason: ReasonConflict},
		{name: "requested DHCP", config: v4, held: []Holding{holding("d/x", tcp(80), "0.0.0.0")},
			req: Request{Owner: "d/a", Namespace: "d", Ports: tcp(80), Requested: addrs("0.0.0.0")}, want: "0.0.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := Parse(tc.config, nil) // some cases want a malformed key
			u := NewUsage()
			for _, h := range tc.held {
				u.Assign(h)
			}
			res, err := u.Allocate(cfg, tc.req)
			if tc.reason != "" {
				var ae *Error
				if !errors.As(err, &ae) || ae.Reason != tc.reason {
					t.Fatalf("err = %v (result %v), want reason %s", err, res.Addrs, tc.reason)
				}
				if !strings.HasPrefix(err.Error(), string(tc.reason)) {
					t.Errorf("message %q should start with its reason", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			if got := addrList(res.Addrs); got != tc.want {
				t.Errorf("addresses = %s, want %s", got, tc.want)
			}
			if got := addrList(res.Shared); got != tc.shared {
				t.Errorf("shared = %s, want %s", got, tc.shared)
			}
			if got := addrList(res.Outside); got != tc.outside {
				t.Errorf("outside = %s, want %s", got, tc.outside)
			}
			again, _ := u.Allocate(cfg, tc.req)
			if addrList(again.Addrs) != addrList(res.Addrs) {
				t.Errorf("not deterministic: %v then %v", res.Addrs, again.Addrs)
			}
		})
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestConflictNamesTheHolder(t *testing.T) {
	cfg := mustParse(t, map[string]string{"cidr-global": "10.0.0.0/29"})
	u := NewUsage()
	u.Assign(holding("ns/web", tcp(80), "10.0.0.3"))
	_, err := u.Allocate(cfg, Request{Owner: "ns/other", Namespace: "ns", Ports: tcp(80), Requested: addrs("10.0.0.3")})
	var ae *Error
	if !errors.As(err, &ae) || ae.Holder != "ns/web" || ae.Addr != netip.MustParseAddr("10.0.0.3") {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "80/TCP") || !strings.Contains(err.Error(), "ns/web") {
		t.Errorf("message %q should name the holder and the port", err)
	}
}

func TestUsageBookkeeping(t *testing.T) {
	cfg := mustParse(t, map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"})
	p := cfg.PoolFor("ns")
	u := NewUsage()
	u.Assign(holding("ns/a", tcp(80), "10.0.0.1", "::ffff:10.0.0.2", "10.0.0.1"))
	h, ok := u.Holding("ns/a")
	if !ok || addrList(h.Addrs) != "10.0.0.1,10.0.0.2" {
		t.Fatalf("holding = %v (mapped address should be IPv4, duplicates dropped)", h.Addrs)
	}
	u.Assign(holding("ns/b", tcp(443), "10.0.0.1"))
	if got := u.Holders(netip.MustParseAddr("10.0.0.1")); strings.Join(got, ",") != "ns/a,ns/b" {
		t.Errorf("holders = %v", got)
	}
	if got := u.Used(p, IPv4); got != countOf(2) {
		t.Errorf("used = %v, want 2 (a shared address counts once)", got)
	}
	if got := u.free(p, IPv4); got != countOf(5) {
		t.Errorf("free = %v, want 5 (.0 is not allocatable)", got)
	}
	u.Release("ns/a")
	if got := u.Used(p, IPv4); got != countOf(1) {
		t.Errorf("after releasing a: used = %v, want 1 (b still holds .1)", got)
	}
	c := u.clone()
	u.Release("ns/b")
	if u.Len() != 0 || c.Len() != 1 {
		t.Errorf("Len = %d, clone %d: the clone must be independent", u.Len(), c.Len())
	}
	// Reassigning replaces what an owner held.
	u.Assign(holding("ns/c", nil, "10.0.0.4"))
	u.Assign(holding("ns/c", nil, "10.0.0.5"))
	if got := u.Holders(netip.MustParseAddr("10.0.0.4")); len(got) != 0 {
		t.Errorf("10.0.0.4 still held by %v after c moved", got)
	}
	if owners := u.Owners(); strings.Join(owners, ",") != "ns/c" {
		t.Errorf("owners = %v", owners)
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]Port{"80": {80, "TCP"}, "53/udp": {53, "UDP"}, " 443/TCP ": {443, "TCP"}, "9/SCTP": {9, "SCTP"}} {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65536", "80/ICMP", "x/TCP"} {
		if _, err := ParsePort(bad); err == nil {
			t.Errorf("ParsePort(%q) accepted", bad)
		}
	}
	if s := (Port{53, "UDP"}).String(); s != "53/UDP" {
		t.Errorf("String = %q", s)
	}
}

// exhaust allocates from cfg for namespace "ns" until the pool is exhausted
// (or limit answers), assigning each answer, and returns the answers.
func exhaust(t *testing.T, cfg *Config, fam Family, limit int) ([]netip.Addr, *Usage) {
	t.Helper()
	u := NewUsage()
	var got []netip.Addr
	for i := 0; i < limit; i++ {
		owner := fmt.Sprint("ns/s", i)
		res, err := u.Allocate(cfg, Request{Owner: owner, Namespace: "ns", Families: []Family{fam}})
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != ReasonExhausted {
				t.Fatalf("allocation %d: %v, want success or PoolExhausted", i, err)
			}
			return got, u
		}
		got = append(got, res.Addrs[0])
		u.Assign(Holding{Owner: owner, Namespace: "ns", Addrs: res.Addrs})
	}
	t.Fatalf("pool not exhausted after %d allocations: %v", limit, got)
	return nil, nil
}

// Assign does not track the IPv6 unspecified address, nor IPv6 addresses in
// the IPv4-mapped block (it records them as IPv4): handing either out would
// give the same address to every Service that asks.
func TestNeverHandsOutAnAddressAssignCannotTrack(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		want string
		size uint64
	}{
		{name: ":: is skipped, ascending", data: map[string]string{"range-global": "::-::2"}, want: "::1,::2", size: 2},
		{name: ":: is skipped, descending", data: map[string]string{"range-global": "::-::2", KeySearchOrder: "desc"}, want: "::2,::1", size: 2},
		{name: "a pool of only ::", data: map[string]string{"cidr-global": "::/128"}, want: "", size: 0},
		{name: "the IPv4-mapped block is not IPv6", data: map[string]string{"cidr-global": "::fffe:0:0/95", KeySearchOrder: "desc"},
			want: "::fffe:ffff:ffff,::fffe:ffff:fffe,::fffe:ffff:fffd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, tc.data)
			p := cfg.PoolFor("ns")
			if tc.size > 0 || tc.want == "" {
				got, u := exhaust(t, cfg, IPv6, 10)
				if addrList(got) != tc.want {
					t.Errorf("handed out %s, want %s", addrList(got), tc.want)
				}
				if p.Size(IPv6) != countOf(tc.size) || !u.free(p, IPv6).isZero() {
					t.Errorf("size %v free %v, want %d and 0", p.Size(IPv6), u.free(p, IPv6), tc.size)
				}
				return
			}
			u := NewUsage()
			var got []netip.Addr
			for i := 0; i < 3; i++ {
				res, err := u.Allocate(cfg, Request{Owner: fmt.Sprint("ns/s", i), Namespace: "ns", Families: []Family{IPv6}})
				if err != nil {
					t.Fatal(err)
				}
				if !p.Contains(res.Addrs[0]) {
					t.Errorf("%s is not in the pool", res.Addrs[0])
				}
				got = append(got, res.Addrs[0])
				u.Assign(Holding{Owner: fmt.Sprint("ns/s", i), Namespace: "ns", Addrs: res.Addrs})
			}
			if addrList(got) != tc.want {
				t.Errorf("handed out %s, want %s", addrList(got), tc.want)
			}
		})
	}
}

// A range ending at the family's last address: sharing must still find
// the addresses in it.
func TestShareAtTheTopOfTheAddressSpace(t *testing.T) {
	for _, tc := range []struct{ pool, held string }{
		{"255.255.255.250-255.255.255.255", "255.255.255.250"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0"},
	} {
		cfg := mustParse(t, map[string]string{"range-global": tc.pool, "allow-share-global": "true"})
		u := NewUsage()
		u.Assign(holding("ns/a", tcp(80), tc.held))
		res, err := u.Allocate(cfg, Request{Owner: "ns/b", Namespace: "ns", Ports: tcp(443)})
		if err != nil || addrList(res.Addrs) != tc.held || addrList(res.Shared) != tc.held {
			t.Errorf("pool %s: got %v (shared %v) %v, want to share %s", tc.pool, res.Addrs, res.Shared, err, tc.held)
		}
	}
}

// Which holder a conflict names depends on what is held, not on the order
// of the Assign calls: Allocate is deterministic across Clone and replay.
func TestConflictHolderDoesNotDependOnAssignOrder(t *testing.T) {
	cfg := mustParse(t, map[string]string{"cidr-global": "10.0.0.0/29"})
	req := Request{Owner: "ns/q", Namespace: "ns", Ports: tcp(80, 443), Requested: addrs("10.0.0.1")}
	for _, order := range [][]string{{"ns/a", "ns/b"}, {"ns/b", "ns/a"}} {
		u := NewUsage()
		for i, o := range order {
			u.Assign(holding(o, tcp(int32(80+363*i)), "10.0.0.1")) // 80, then 443
		}
		_, err := u.Allocate(cfg, req)
		var ae *Error
		if !errors.As(err, &ae) || ae.Reason != ReasonConflict || ae.Holder != "ns/a" {
			t.Errorf("assigned %v: err %v, want a conflict naming ns/a (the first holder by name)", order, err)
		}
		if got := strings.Join(u.Holders(netip.MustParseAddr("10.0.0.1")), ","); got != "ns/a,ns/b" {
			t.Errorf("holders = %s", got)
		}
	}
}

// Result.Shared lists only addresses that another Service holds.
func TestSharedListsOnlyOthersHoldings(t *testing.T) {
	cfg := mustParse(t, map[string]string{"cidr-global": "10.0.0.0/29", "allow-share-global": "true"})
	u := NewUsage()
	u.Assign(holding("ns/a", tcp(80), "10.0.0.1"))
	res, err := u.Allocate(cfg, Request{Owner: "ns/a", Namespace: "ns", Ports: tcp(80)})
	if err != nil || addrList(res.Addrs) != "10.0.0.1" || len(res.Shared) != 0 {
		t.Errorf("ns/a asking again: %v shared %v %v, want its own 10.0.0.1, not shared", res.Addrs, res.Shared, err)
	}
}

// A story across a /24 boundary: every allocatable address once, in order,
// never .255 or .0; a released address is the next one handed out.
func TestStoryAcrossASlash24Boundary(t *testing.T) {
	const asc = "10.0.0.250,10.0.0.251,10.0.0.252,10.0.0.253,10.0.0.254,10.0.1.1,10.0.1.2,10.0.1.3,10.0.1.4,10.0.1.5"
	const desc = "10.0.1.5,10.0.1.4,10.0.1.3,10.0.1.2,10.0.1.1,10.0.0.254,10.0.0.253,10.0.0.252,10.0.0.251,10.0.0.250"
	for order, want := range map[string]string{"asc": asc, "desc": desc} {
		cfg := mustParse(t, map[string]string{"range-global": "10.0.0.250-10.0.1.5", KeySearchOrder: order})
		got, u := exhaust(t, cfg, IPv4, 20)
		if addrList(got) != want {
			t.Errorf("%s: handed out %s, want %s", order, addrList(got), want)
		}
		p := cfg.PoolFor("ns")
		if p.Size(IPv4) != countOf(10) || u.Used(p, IPv4) != countOf(10) || !u.free(p, IPv4).isZero() {
			t.Errorf("%s: size %v used %v free %v", order, p.Size(IPv4), u.Used(p, IPv4), u.free(p, IPv4))
		}
		// ns/s5 holds the sixth address handed out; once released it is the
		// only free one, so the next Service gets it.
		u.Release("ns/s5")
		res, err := u.Allocate(cfg, Request{Owner: "ns/late", Namespace: "ns"})
		if err != nil || res.Addrs[0] != got[5] {
			t.Errorf("%s: after releasing %s got %v %v", order, got[5], res.Addrs, err)
		}
	}
}

// An IPv6 /64: as cheap as a /28, and counted exactly.
func TestHugeIPv6Pool(t *testing.T) {
	cfg := mustParse(t, map[string]string{"cidr-global": "2001:db8::/64"})
	p := cfg.PoolFor("ns")
	if got := p.Size(IPv6).String(); got != "18446744073709551615" {
		t.Errorf("size = %s, want 2^64-1 (all but the Subnet-Router anycast 2001:db8::)", got)
	}
	got, _ := exhaustN(t, cfg, IPv6, 3)
	if addrList(got) != "2001:db8::1,2001:db8::2,2001:db8::3" {
		t.Errorf("handed out %s", addrList(got))
	}
	desc := mustParse(t, map[string]string{"cidr-global": "2001:db8::/64", KeySearchOrder: "desc"})
	got, u := exhaustN(t, desc, IPv6, 2)
	if addrList(got) != "2001:db8::ffff:ffff:ffff:ffff,2001:db8::ffff:ffff:ffff:fffe" {
		t.Errorf("desc handed out %s", addrList(got))
	}
	if free := u.free(p, IPv6).String(); free != "18446744073709551613" {
		t.Errorf("free = %s, want 2^64-3", free)
	}
}

// exhaustN allocates and assigns n addresses.
func exhaustN(t *testing.T, cfg *Config, fam Family, n int) ([]netip.Addr, *Usage) {
	t.Helper()
	u := NewUsage()
	var got []netip.Addr
	for i := 0; i < n; i++ {
		owner := fmt.Sprint("ns/s", i)
		res, err := u.Allocate(cfg, Request{Owner: owner, Namespace: "ns", Families: []Family{fam}})
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		got = append(got, res.Addrs[0])
		u.Assign(Holding{Owner: owner, Namespace: "ns", Addrs: res.Addrs})
	}
	return got, u
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Reason: ReasonExhausted, Pool: "global", Family: IPv4}, `PoolExhausted: no free IPv4 address in pool "global"`},
		{&Error{Reason: ReasonNoPool, Pool: "d"}, `NoPool: no pool for namespace "d" and no global pool`},
		{&Error{Reason: ReasonNoPool, Pool: "d", Detail: "every pool key of \"d\" is malformed"}, `NoPool: every pool key of "d" is malformed`},
		{&Error{Reason: ReasonFamilyUnavailable, Pool: "global", Family: IPv6}, `FamilyUnavailable: pool "global" has no IPv6 addresses`},
		{&Error{Reason: ReasonConflict, Addr: netip.MustParseAddr("10.0.0.1"), Holder: "d/x", Detail: "both use port 80/TCP"}, `Conflict: address 10.0.0.1 is held by d/x: both use port 80/TCP`},
		{&Error{Reason: ReasonInvalidRequest, Detail: "unknown IP family Family(5)"}, `InvalidRequest: unknown IP family Family(5)`},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	for f, want := range map[Family]string{IPv4: "IPv4", IPv6: "IPv6", 5: "Family(5)"} {
		if got := f.String(); got != want {
			t.Errorf("Family(%d).String() = %q, want %q", int(f), got, want)
		}
	}
	// Allocate's own errors carry what a caller needs.
	cfg := mustParse(t, map[string]string{"cidr-global": "10.0.0.0/31"})
	u := NewUsage()
	u.Assign(holding("d/x", nil, "10.0.0.1"))
	_, err := u.Allocate(cfg, Request{Owner: "d/a", Namespace: "d"})
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != ReasonExhausted || ae.Pool != "global" || ae.Family != IPv4 {
		t.Errorf("exhausted: %#v", err)
	}
	_, err = u.Allocate(cfg, Request{Owner: "d/a", Namespace: "d", Requested: addrs("10.0.0.1")})
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "no ports") {
		t.Errorf("conflict with a portless holder: %v", err)
	}
	if s := u.String(); s != "Usage{owners: 1, addresses: 1}" {
		t.Errorf("String() = %q", s)
	}
}

// TestPreferDualStackSaysWhichFamilyIsMissing: a PreferDualStack answer of
// one family says why the other could not be had; a full answer says nothing.
func TestPreferDualStackSaysWhichFamilyIsMissing(t *testing.T) {
	dual := map[string]string{"range-global": "10.0.0.1-10.0.0.1,2001:db8::1-2001:db8::2"}
	tests := []struct {
		name   string
		config map[string]string
		held   []Holding
		fams   []Family
		want   string // reason:family of each Unavailable entry
	}{
		{"IPv4-only pool", map[string]string{"cidr-global": "192.168.0.200/29"}, nil, []Family{IPv4, IPv6}, "FamilyUnavailable:IPv6"},
		{"IPv6 first, IPv4-only pool", map[string]string{"cidr-global": "192.168.0.200/29"}, nil, []Family{IPv6, IPv4}, "FamilyUnavailable:IPv6"},
		{"IPv4 exhausted", dual, []Holding{holding("d/x", nil, "10.0.0.1")}, []Family{IPv4, IPv6}, "PoolExhausted:IPv4"},
		{"both families", dual, nil, []Family{IPv4, IPv6}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := NewUsage()
			for _, h := range tc.held {
				u.Assign(h)
			}
			res, err := u.Allocate(mustParse(t, tc.config), Request{Owner: "d/a", Namespace: "d", Families: tc.fams, Policy: PreferDualStack})
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			var got []string
			for _, e := range res.Unavailable {
				got = append(got, fmt.Sprintf("%s:%s", e.Reason, e.Family))
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("Unavailable = %v, want %q", got, tc.want)
			}
		})
	}
}

func TestAlsoAddressesAreKeptAndReleasedWithTheirOwner(t *testing.T) {
	cfg := mustParse(t, map[string]string{"range-global": "10.0.0.1-10.0.0.3"})
	p := cfg.PoolFor("ns")
	u := NewUsage()
	u.Assign(Holding{Owner: "ns/a", Namespace: "ns", Addrs: addrs("10.0.0.1"), Also: addrs("10.0.0.2", "10.0.0.1")})
	h, ok := u.Holding("ns/a")
	if !ok || addrList(h.Addrs) != "10.0.0.1" || addrList(h.Also) != "10.0.0.2" {
		t.Fatalf("holding = %+v, want .1 held and .2 also (the duplicate dropped)", h)
	}
	if got := u.Used(p, IPv4); got != countOf(2) {
		t.Errorf("used = %v, want 2", got)
	}
	if got := u.Holders(netip.MustParseAddr("10.0.0.2")); strings.Join(got, ",") != "ns/a" {
		t.Errorf("holders of .2 = %v", got)
	}
	// Only served on an address, holding none: still in use.
	u.Assign(Holding{Owner: "ns/b", Namespace: "ns", Also: addrs("10.0.0.3")})
	if _, err := u.Allocate(cfg, Request{Owner: "ns/c", Namespace: "ns"}); err == nil {
		t.Error("an address only served on was handed out")
	}
	u.Release("ns/a")
	u.Release("ns/b")
	if got := u.Used(p, IPv4); got != countOf(0) || u.Len() != 0 {
		t.Errorf("after release: used = %v, owners %d; want none", got, u.Len())
	}
}

// A Subnet-Router anycast address (low 64 bits zero) is never handed out
// automatically, but may be requested: it is granted and listed in
// Result.Anycast, inside the pool or not; other addresses are not listed.
func TestRequestedSubnetRouterAnycast(t *testing.T) {
	cfg := mustParse(t, map[string]string{"cidr-global": "2001:db8:1::/64,10.0.0.0/24"})
	for _, tc := range []struct {
		name             string
		requested        []netip.Addr
		anycast, outside string
	}{
		{"in the pool", addrs("2001:db8:1::"), "2001:db8:1::", ""},
		{"outside the pool", addrs("2001:db8:2::"), "2001:db8:2::", "2001:db8:2::"},
		{"dual-stack", addrs("10.0.0.0", "2001:db8:1::"), "2001:db8:1::", ""},
		{"an ordinary IPv6 address", addrs("2001:db8:1::1"), "", ""},
		{"IPv4 .0 is not IPv6 anycast", addrs("10.0.0.0"), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := NewUsage().Allocate(cfg, Request{Owner: "d/a", Namespace: "d", Requested: tc.requested})
			if err != nil {
				t.Fatal(err)
			}
			if addrList(res.Addrs) != addrList(tc.requested) || addrList(res.Anycast) != tc.anycast || addrList(res.Outside) != tc.outside {
				t.Errorf("addrs %s anycast %q outside %q, want %s %q %q", addrList(res.Addrs), addrList(res.Anycast), addrList(res.Outside),
					addrList(tc.requested), tc.anycast, tc.outside)
			}
		})
	}
	if SubnetRouterAnycast(netip.MustParseAddr("::ffff:10.0.0.0")) || !SubnetRouterAnycast(netip.IPv6Unspecified()) {
		t.Error("SubnetRouterAnycast: an IPv4-mapped address is not; :: is")
	}
}
