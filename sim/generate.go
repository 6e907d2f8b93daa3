package sim

import (
	"fmt"
	"net/netip"
)

// Generate writes a large scenario for scale runs: n Services spread over
// the given pools (namespace -> CIDR; nil: one IPv4 /12 for global), with
// a restart in the middle and a spot check at the end.
func Generate(n int, pools map[string]string) (*Scenario, error) {
	if n < 1 {
		return nil, fmt.Errorf("services %d: must be at least 1", n)
	}
	if len(pools) == 0 {
		pools = map[string]string{"global": "10.0.0.0/12"}
	}
	sc := &Scenario{Name: fmt.Sprintf("generated-%d", n), Config: map[string]string{}}
	var namespaces []string
	for _, ns := range sortedKeys(pools) {
		if _, err := netip.ParsePrefix(pools[ns]); err != nil {
			if a, aerr := netip.ParseAddr(pools[ns]); aerr == nil {
				a = a.WithZone("").Unmap()
				return nil, fmt.Errorf("pool %s=%q: not a CIDR: for the one address, write %s", ns, pools[ns], netip.PrefixFrom(a, a.BitLen()))
			}
			return nil, fmt.Errorf("pool %s=%q: not a CIDR", ns, pools[ns])
		}
		sc.Config["cidr-"+ns] = pools[ns]
		if ns == "global" {
			ns = "default"
		}
		namespaces = append(namespaces, ns)
	}
	for i := 0; i < n; i++ {
		if i == n/2 {
			sc.Steps = append(sc.Steps, Step{Restart: &struct{}{}})
		}
		sc.Steps = append(sc.Steps, Step{Create: &ServiceSpec{
			Service: fmt.Sprintf("%s/s%d", namespaces[i%len(namespaces)], i),
			Ports:   []string{"80/TCP"},
		}})
	}
	sc.Steps = append(sc.Steps, Step{Expect: &Expect{Service: fmt.Sprintf("%s/s%d", namespaces[0], 0), Event: "AddressAssigned"}})
	return sc, nil
}
