package sim

import (
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// plan loads the cluster's address claims into the simulator before the
// engine starts: an address claimed by anyone but a Service of ours is
// never handed out, and a Service that asks for it is a conflict; a claim
// of ours is the Service's own; one naming only Services that are gone is
// freed at the engine's start.
func TestPlanHonoursTheClaims(t *testing.T) {
	const before = `
config: {range-global: 10.5.0.3-10.5.0.3}
steps:
  - create: {service: default/held}
  - create: {service: default/zeta}
  - create: {service: default/alpha}
  - create: {service: default/asks, annotations: {kube-vip.io/loadbalancerIPs: 10.5.0.1}}
`
	newData := map[string]string{"range-global": "10.5.0.1-10.5.0.3"}
	old := time.Now().Add(-time.Hour)
	claim := func(addr, manager, owner string) engine.Claim {
		return engine.Claim{Addr: netip.MustParseAddr(addr), Manager: manager, Owner: owner, ID: "uid-" + addr, Created: old}
	}
	for _, tc := range []struct {
		name   string
		claims []engine.Claim
		want   map[string]string
		// detail is in the conflict's message.
		detail string
	}{
		{
			name: "no claims",
			want: map[string]string{"default/held": "keep 10.5.0.3", "default/asks": "keep 10.5.0.1",
				"default/zeta": "get 10.5.0.2", "default/alpha": "wait "},
		},
		{
			name:   "a ClusterIP in the pool",
			claims: []engine.Claim{claim("10.5.0.1", engine.ClusterIPManager, "default/kubernetes")},
			want: map[string]string{"default/held": "keep 10.5.0.3", "default/asks": "conflict ",
				"default/zeta": "get 10.5.0.2", "default/alpha": "wait "},
			detail: "the pool overlaps the service CIDR",
		},
		{
			name:   "another manager's claim",
			claims: []engine.Claim{claim("10.5.0.2", "other.example.com", "default/elsewhere")},
			want: map[string]string{"default/held": "keep 10.5.0.3", "default/asks": "keep 10.5.0.1",
				"default/zeta": "wait ", "default/alpha": "wait "},
		},
		{
			name:   "a claim of ours for the Service that carries the address",
			claims: []engine.Claim{claim("10.5.0.3", engine.ManagedBy, "default/held")},
			want: map[string]string{"default/held": "keep 10.5.0.3", "default/asks": "keep 10.5.0.1",
				"default/zeta": "get 10.5.0.2", "default/alpha": "wait "},
		},
		{
			name:   "a claim of ours naming only Services that are gone",
			claims: []engine.Claim{claim("10.5.0.2", engine.ManagedBy, "default/gone")},
			want: map[string]string{"default/held": "keep 10.5.0.3", "default/asks": "keep 10.5.0.1",
				"default/zeta": "get 10.5.0.2", "default/alpha": "wait "},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := ParseScenario([]byte(before))
			if err != nil {
				t.Fatal(err)
			}
			svcs, oldData, err := sc.Services()
			if err != nil {
				t.Fatal(err)
			}
			p, err := MakePlan(svcs, tc.claims, oldData, newData, sc.ControllerOptions())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, l := range p.Services {
				got[l.Service] = l.Outcome + " " + l.After
				if l.Outcome == "conflict" && !strings.Contains(l.Detail, tc.detail) {
					t.Errorf("%s: conflict %q does not say %q", l.Service, l.Detail, tc.detail)
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("plan says %q, want %q", got, tc.want)
			}
		})
	}
}
