package sim

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// IsFailure reports whether err is a failed expect or a broken invariant
// (rather than a malformed scenario).
func IsFailure(err error) bool {
	var ee *ExpectError
	var ie *InvariantError
	return errors.As(err, &ee) || errors.As(err, &ie)
}

// Random returns a random scenario of n steps drawn from seed: creates
// (dual-stack, requested addresses, classes, status-only holders, invalid
// annotations, unmanaged holders), updates (type, ports, class, the
// kube-vip.io/ignore annotation, the address annotation racing a write,
// the status), deletes, config changes (some
// malformed), lag, conflicts, lost answers and lost writes, restarts and
// leader hand-overs. With config
// nil it uses a small default with overlapping pools and two other
// ConfigMaps; with a config, only that one (and variants of it: malformed,
// a pool dropped), its namespaces, and requested addresses from its pools.
func Random(seed int64, n int, config map[string]string) *Scenario {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6578706c6f7265))
	var configs []map[string]string
	var namespaces, requestable []string
	if config == nil {
		config = map[string]string{"cidr-global": "10.0.0.0/28", "range-red": "10.0.0.2-10.0.0.6", "allow-share-global": "true"}
		configs = []map[string]string{
			config,
			{"cidr-global": "10.0.0.0/29", "range-blue": "10.0.0.4-10.0.0.9,2001:db8::1-2001:db8::4"},
			{"cidr-global": "10.0.0.0/33"}, // malformed: the last good value keeps serving
			{"range-global": "10.0.0.1-10.0.0.3", "allow-share-global": "true", "search-order": "desc"},
		}
		namespaces = []string{"red", "blue", "green"}
		for i := 1; i <= 8; i++ {
			requestable = append(requestable, fmt.Sprintf("10.0.0.%d", i))
		}
	} else {
		configs = variants(config)
		namespaces, requestable = drawFrom(config)
	}
	portSets := [][]string{nil, {"80/TCP"}, {"53/UDP"}, {"53/TCP"}, {"80/TCP", "443/TCP"}}
	sc := &Scenario{Name: fmt.Sprintf("explore-seed-%d", seed), Config: config, Seed: seed}
	const ours, other = decide.DefaultLoadBalancerClass, "example.com/other-lb"
	if rng.IntN(4) == 0 {
		sc.LoadBalancerClass = ours
	}
	families := func() []string {
		if rng.IntN(2) == 0 {
			return []string{"IPv4", "IPv6"}
		}
		return []string{"IPv6", "IPv4"}
	}
	var live []string
	// notLB holds the live Services whose type is not LoadBalancer: only
	// they may be given a class (with the type), as the API server allows.
	notLB := map[string]bool{}
	next := 0
	replicas, active := 1, 1
	for len(sc.Steps) < n {
		var st Step
		switch r := rng.IntN(27); {
		case r < 8 || len(live) == 0:
			next++
			spec := &ServiceSpec{Service: fmt.Sprintf("%s/s%d", namespaces[rng.IntN(len(namespaces))], next), Ports: portSets[rng.IntN(len(portSets))]}
			pick := func() string { return requestable[rng.IntN(len(requestable))] }
			switch rng.IntN(12) {
			case 0:
				spec.IPFamilyPolicy, spec.IPFamilies = "PreferDualStack", families()
			case 1:
				spec.IPFamilyPolicy, spec.IPFamilies = "RequireDualStack", families()
			case 2, 3:
				if len(requestable) > 0 {
					ip := requestable[rng.IntN(len(requestable))]
					if rng.IntN(3) == 0 {
						// Carried in the annotation, as a user (or another
						// provider) may have written it: maybe contested.
						spec.Annotations = map[string]string{decide.AnnotationLoadBalancerIPs: ip}
					} else {
						spec.LoadBalancerIP = &ip
					}
				}
			case 4, 5:
				// Served by another load-balancer (status only): adopted
				// when managed, in use whatever its class.
				if len(requestable) > 0 {
					spec.Ingress = []string{pick()}
				}
			case 6:
				// An annotation that fails validation: what parses in it
				// stays in use.
				if len(requestable) > 0 {
					v := pick() + "," + []string{pick(), "bogus"}[rng.IntN(2)]
					spec.Annotations = map[string]string{decide.AnnotationLoadBalancerIPs: v}
				}
			case 7:
				// Not ours, carrying an address: never shared.
				if len(requestable) > 0 {
					spec.Annotations = map[string]string{decide.AnnotationIgnore: "true", decide.AnnotationLoadBalancerIPs: pick()}
				}
			}
			if sc.LoadBalancerClass != "" && rng.IntN(6) > 0 {
				c := ours
				spec.LoadBalancerClass = &c
			} else if rng.IntN(8) == 0 {
				c := other
				spec.LoadBalancerClass = &c
			}
			st.Create = spec
			live = append(live, spec.Service)
			if len(requestable) > 0 && spec.LoadBalancerIP == nil && spec.Annotations == nil && spec.Ingress == nil && rng.IntN(3) == 0 {
				// The user annotates it while the controller may be
				// writing its first address.
				sc.Steps = append(sc.Steps, st)
				st = Step{Update: &ServiceSpec{Service: spec.Service,
					Annotations: map[string]string{decide.AnnotationLoadBalancerIPs: pick()}}}
			}
		case r < 10:
			i := rng.IntN(len(live))
			st.Delete = &Ref{Service: live[i]}
			live = append(live[:i], live[i+1:]...)
		case r < 12:
			types := []string{"ClusterIP", "LoadBalancer"}
			st.Update = &ServiceSpec{Service: live[rng.IntN(len(live))], Type: types[rng.IntN(2)], Ports: portSets[rng.IntN(len(portSets))]}
			notLB[st.Update.Service] = st.Update.Type != "LoadBalancer"
		case r < 13:
			// Back to LoadBalancer, with a class or none; a LoadBalancer
			// whose class would change goes to ClusterIP first.
			svc := live[rng.IntN(len(live))]
			if notLB[svc] {
				c := []string{"", ours, other}[rng.IntN(3)]
				st.Update = &ServiceSpec{Service: svc, Type: "LoadBalancer", LoadBalancerClass: &c}
			} else {
				st.Update = &ServiceSpec{Service: svc, Type: "ClusterIP"}
			}
			notLB[svc] = !notLB[svc]
		case r < 14:
			v := []string{"true", ""}[rng.IntN(2)] // "" removes it
			st.Update = &ServiceSpec{Service: live[rng.IntN(len(live))], Annotations: map[string]string{decide.AnnotationIgnore: v}}
		case r < 16:
			st.Config = configs[rng.IntN(len(configs))]
		case r < 18:
			lag := rng.IntN(6)
			st.Lag = &lag
		case r < 19:
			st.Conflict = &Conflict{Count: 1 + rng.IntN(2)}
		case r < 20:
			st.Conflict = &Conflict{Service: live[rng.IntN(len(live))]}
		case r < 21:
			st.Restart = &struct{}{}
		case r < 22 && replicas == 1:
			replicas = 2
			st.Replicas = new(replicas)
		case r == 23 && replicas == 2:
			// Both replicas act as leader (a stale leader, an upgrade),
			// or the leader alone again.
			// Sharing stays on: a claim records the Services sharing its
			// address, so two controllers letting in sharers at once
			// cannot both succeed.
			active = 3 - active
			st.Active = new(active)
		case r == 24:
			n := 1 + rng.IntN(2)
			if rng.IntN(2) == 0 {
				st.Lose = &n
			} else {
				st.Drop = &n
			}
		case r < 23 && replicas == 2 && rng.IntN(3) == 0:
			replicas, active = 1, 1
			st.Replicas = new(replicas)
		case r == 25 && len(requestable) > 0:
			// A user's edit of the annotation, racing the controller's
			// write; "" removes it.
			v := []string{requestable[rng.IntN(len(requestable))], ""}[rng.IntN(2)]
			st.Update = &ServiceSpec{Service: live[rng.IntN(len(live))], Annotations: map[string]string{decide.AnnotationLoadBalancerIPs: v}}
		case r == 26 && len(requestable) > 0:
			// A load-balancer's status: an address, or none.
			ing := []string{}
			if rng.IntN(2) == 0 {
				ing = append(ing, requestable[rng.IntN(len(requestable))])
			}
			st.Update = &ServiceSpec{Service: live[rng.IntN(len(live))], Ingress: ing}
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

// variants returns config and changes of it an operator might make: a
// malformed value (the last good one keeps serving) and a pool dropped.
func variants(config map[string]string) []map[string]string {
	out := []map[string]string{config}
	var poolKeys []string
	for _, k := range sortedKeys(config) {
		if strings.HasPrefix(k, "cidr-") || strings.HasPrefix(k, "range-") {
			poolKeys = append(poolKeys, k)
		}
	}
	if len(poolKeys) == 0 {
		return out
	}
	bad := maps.Clone(config)
	bad[poolKeys[0]] += ",not-an-address"
	dropped := maps.Clone(config)
	delete(dropped, poolKeys[len(poolKeys)-1])
	return append(out, bad, dropped)
}

// drawFrom returns the namespaces a config's pools serve (default for the
// global pool, and one without a pool of its own) and addresses to request:
// a few from the start and the end of each of its ranges, and one just
// past each range (outside it).
func drawFrom(config map[string]string) (namespaces, addrs []string) {
	cfg, _ := allocator.Parse(config, nil) // a malformed key is skipped
	seen := map[string]bool{}
	add := func(a netip.Addr) {
		if a.IsValid() && !a.IsUnspecified() && !seen[a.String()] {
			seen[a.String()] = true
			addrs = append(addrs, a.String())
		}
	}
	for _, p := range cfg.Pools() {
		ns := p.Name()
		if ns == allocator.GlobalPool {
			ns = "default"
		}
		if len(validation.IsDNS1123Label(ns)) == 0 && !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
		for _, r := range p.Ranges() {
			a := r.From()
			for i := 0; i < 3 && a.IsValid() && a.Compare(r.To()) <= 0; i++ {
				add(a)
				a = a.Next()
			}
			add(r.To())
			add(r.To().Next())
		}
	}
	for _, ns := range []string{"default", "elsewhere"} {
		if !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	return namespaces, addrs
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
