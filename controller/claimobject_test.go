package controller

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/ipaddress"
)

// The IPAddress the store creates for a claim reads back as that claim:
// owner, sharers and the UIDs of those it knew.
func TestClaimObjectRoundTrips(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		name string
		c    engine.Claim
	}{
		{name: "owner, no UID (as older versions)", c: engine.Claim{Addr: a, Owner: "ns/a"}},
		{name: "owner with UID", c: engine.Claim{Addr: a, Owner: "ns/a", UIDs: map[string]string{"ns/a": "u1"}}},
		{name: "sharers, one UID unknown", c: engine.Claim{Addr: a, Owner: "ns/a", Sharers: []string{"ns/b", "other/c"},
			UIDs: map[string]string{"ns/a": "u1", "other/c": "u3"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, err := claimObject(tc.c)
			if err != nil {
				t.Fatalf("claimObject: %v", err)
			}
			got, ok := ipaddress.Claim(ip)
			if !ok || !got.Ours() {
				t.Fatalf("read back %+v, %v: not a claim of ours", got, ok)
			}
			if got.Addr != tc.c.Addr || got.Owner != tc.c.Owner || !slices.Equal(got.Sharers, tc.c.Sharers) || !maps.Equal(got.UIDs, tc.c.UIDs) {
				t.Fatalf("read back %+v, want %+v", got, tc.c)
			}
		})
	}
}
