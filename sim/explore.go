package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// IsFailure reports whether err is a failed expect or a broken invariant
// (rather than a malformed scenario).
func IsFailure(err error) bool {
	var ee *ExpectError
	var ie *InvariantError
	return errors.As(err, &ee) || errors.As(err, &ie)
}

// Random returns a random scenario of n steps over config (nil: a small
// default with overlapping pools), drawn from seed: creates, updates,
// deletes, config changes (some malformed), lag, conflicts, restarts and
// leader hand-overs.
func Random(seed int64, n int, config map[string]string) *Scenario {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6578706c6f7265))
	if config == nil {
		config = map[string]string{"cidr-global": "10.0.0.0/28", "range-red": "10.0.0.2-10.0.0.6", "allow-share-global": "true"}
	}
	configs := []map[string]string{
		config,
		{"cidr-global": "10.0.0.0/29", "range-blue": "10.0.0.4-10.0.0.9,2001:db8::1-2001:db8::4"},
		{"cidr-global": "10.0.0.0/33"}, // malformed: the last good value keeps serving
		{"range-global": "10.0.0.1-10.0.0.3", "allow-share-global": "true", "search-order": "desc"},
	}
	namespaces := []string{"red", "blue", "green"}
	portSets := [][]string{nil, {"80/TCP"}, {"53/UDP"}, {"53/TCP"}, {"80/TCP", "443/TCP"}}
	sc := &Scenario{Name: fmt.Sprintf("explore-seed-%d", seed), Config: config, Seed: seed}
	var live []string
	next := 0
	replicas := 1
	for len(sc.Steps) < n {
		var st Step
		switch r := rng.IntN(20); {
		case r < 8 || len(live) == 0:
			next++
			spec := &ServiceSpec{Service: fmt.Sprintf("%s/s%d", namespaces[rng.IntN(len(namespaces))], next), Ports: portSets[rng.IntN(len(portSets))]}
			switch rng.IntN(6) {
			case 0:
				spec.IPFamilyPolicy, spec.IPFamilies = "PreferDualStack", []string{"IPv4", "IPv6"}
			case 1:
				ip := fmt.Sprintf("10.0.0.%d", 1+rng.IntN(8))
				spec.LoadBalancerIP = &ip
			}
			st.Create = spec
			live = append(live, spec.Service)
		case r < 10:
			i := rng.IntN(len(live))
			st.Delete = &Ref{Service: live[i]}
			live = append(live[:i], live[i+1:]...)
		case r < 12:
			types := []string{"ClusterIP", "LoadBalancer"}
			st.Update = &ServiceSpec{Service: live[rng.IntN(len(live))], Type: types[rng.IntN(2)], Ports: portSets[rng.IntN(len(portSets))]}
		case r < 14:
			st.Config = configs[rng.IntN(len(configs))]
		case r < 16:
			lag := rng.IntN(6)
			st.Lag = &lag
		case r < 17:
			st.Conflict = &Conflict{Count: 1 + rng.IntN(2)}
		case r < 18:
			st.Restart = &struct{}{}
		case r < 19 && replicas == 1:
			replicas = 2
			st.Replicas = &replicas
		default:
			if replicas == 2 {
				st.Handover = &struct{}{}
			} else {
				st.Settle = &struct{}{}
			}
		}
		sc.Steps = append(sc.Steps, st)
	}
	return sc
}

// Shrink removes steps from a failing scenario while it still fails,
// returning a smaller scenario that fails too.
func Shrink(sc *Scenario, o Options) *Scenario {
	cur := *sc
	cur.Steps = append([]Step(nil), sc.Steps...)
	for changed := true; changed; {
		changed = false
		for i := len(cur.Steps) - 1; i >= 0; i-- {
			try := cur
			try.Steps = append(append([]Step(nil), cur.Steps[:i]...), cur.Steps[i+1:]...)
			if _, err := Run(&try, o); IsFailure(err) {
				cur = try
				changed = true
			}
		}
	}
	return &cur
}
