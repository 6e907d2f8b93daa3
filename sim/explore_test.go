package sim

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
	"sigs.k8s.io/yaml"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

func TestExploreFixedSeeds(t *testing.T) {
	for seed := int64(1); seed <= 60; seed++ {
		sc := Random(seed, 80, nil)
		if _, err := Run(sc, Options{}); err != nil {
			raw, _ := yaml.Marshal(Shrink(sc, Options{}))
			t.Fatalf("seed %d: %v\nshrunk scenario:\n%s", seed, err, raw)
		}
	}
}

// TestExploreSweep runs the explorer over a fixed range of seeds, each
// under three interleavings, about 6,000 runs: a wider sweep found two
// double assignments and claims left behind for deleted Services in the
// engine of 4bf1a54, on which this range fails at seeds 377/7, 916/7,
// 916/1234, 978/7 and 1183/0.
func TestExploreSweep(t *testing.T) {
	failed := 0
	for seed := int64(1); seed <= 2000; seed++ {
		for _, il := range []int64{0, 7, 1234} {
			if _, err := Run(Random(seed, 100, nil), Options{Seed: il}); err != nil {
				failed++
				t.Errorf("seed %d, interleaving %d: %v (shrink it: sim.Shrink on sim.Random(%d, 100, nil) with Seed %d)", seed, il, err, seed, il)
				if failed == 5 {
					t.Fatal("stopping after 5 failures")
				}
			}
		}
	}
}

func TestPropertyRandomScenariosKeepTheInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Int64Range(1, 1<<40).Draw(t, "seed")
		n := rapid.IntRange(1, 60).Draw(t, "steps")
		sc := Random(seed, n, nil)
		if _, err := Run(sc, Options{Seed: rapid.Int64Range(1, 1000).Draw(t, "interleaving")}); err != nil {
			t.Fatalf("%v", err)
		}
	})
}

func TestGenerateAndPlan(t *testing.T) {
	sc, err := Generate(300, map[string]string{"global": "10.0.0.0/22", "red": "10.9.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Allocations != 300 || res.Services != 300 {
		t.Fatalf("%d allocations for %d Services, want 300", res.Allocations, res.Services)
	}
	svcs, data, err := sc.Services()
	if err != nil {
		t.Fatal(err)
	}
	// Shrink red's pool: its Services keep their addresses outside it.
	newData := map[string]string{"cidr-global": data["cidr-global"], "cidr-red": "10.9.1.0/24"}
	p, err := MakePlan(svcs, nil, data, newData, decide.Options{})
	if err != nil {
		t.Fatal(err)
	}
	outside := 0
	for _, l := range p.Services {
		if l.Outcome == "keep, outside pool" {
			outside++
			if !strings.HasPrefix(l.Service, "red/") || l.Before != l.After {
				t.Errorf("unexpected line %+v", l)
			}
		}
	}
	if outside != 150 {
		t.Fatalf("%d Services would be outside their pool, want red's 150", outside)
	}
	var b strings.Builder
	if err := p.Write(&b); err != nil || !strings.Contains(b.String(), "red") {
		t.Fatalf("plan output: %v\n%s", err, b.String())
	}
}

func TestRandomDrawsEveryHazard(t *testing.T) {
	counts := map[string]int{}
	for seed := int64(1); seed <= 40; seed++ {
		sc := Random(seed, 120, nil)
		if sc.LoadBalancerClass != "" {
			counts["a scenario with a loadBalancerClass"]++
		}
		for _, st := range sc.Steps {
			switch {
			case st.Conflict != nil && st.Conflict.Service != "":
				counts["conflict: {service}"]++
			case st.Conflict != nil:
				counts["conflict: {count}"]++
			case st.Update != nil && st.Update.LoadBalancerClass != nil:
				counts["update of the class"]++
			case st.Update != nil && st.Update.Annotations[decide.AnnotationIgnore] == "true":
				counts["update: kube-vip.io/ignore"]++
			case st.Update != nil && st.Update.Annotations != nil:
				counts["update: kube-vip.io/ignore removed"]++
			case st.Create != nil && st.Create.IPFamilyPolicy == "RequireDualStack":
				counts["create RequireDualStack"]++
			case st.Create != nil && st.Create.LoadBalancerIP != nil:
				counts["create with a requested address"]++
			case st.Replicas != nil && *st.Replicas == 1:
				counts["replicas: 1"]++
			case st.Handover != nil:
				counts["handover"]++
			case st.Lose != nil:
				counts["lose"]++
			case st.Drop != nil:
				counts["drop"]++
			case st.Create != nil && st.Create.Annotations[decide.AnnotationLoadBalancerIPs] != "":
				counts["create carrying the annotation"]++
			}
		}
		if _, err := Run(sc, Options{}); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	for _, want := range []string{"a scenario with a loadBalancerClass", "conflict: {service}", "conflict: {count}", "update of the class",
		"update: kube-vip.io/ignore", "update: kube-vip.io/ignore removed", "create RequireDualStack", "create with a requested address",
		"replicas: 1", "handover", "lose", "drop", "create carrying the annotation"} {
		if counts[want] == 0 {
			t.Errorf("40 random scenarios have no %s (%v)", want, counts)
		}
	}
}

func TestRandomWithAConfigUsesOnlyIt(t *testing.T) {
	config := map[string]string{"cidr-global": "192.168.5.0/29", "range-finance": "172.20.0.10-172.20.0.12,2001:db8:5::1-2001:db8:5::2"}
	// Requested addresses come from these ranges or just past their ends.
	near := func(ip string) bool {
		for _, prefix := range []string{"192.168.5.", "172.20.0.1", "2001:db8:5::"} {
			if strings.HasPrefix(ip, prefix) {
				return true
			}
		}
		return false
	}
	requested := 0
	for seed := int64(1); seed <= 30; seed++ {
		sc := Random(seed, 100, config)
		if !reflect.DeepEqual(sc.Config, config) {
			t.Fatalf("seed %d: starts with %v, want the given config", seed, sc.Config)
		}
		for i, st := range sc.Steps {
			if st.Config != nil {
				for k, v := range st.Config {
					if orig, ok := config[k]; !ok || (v != orig && v != orig+",not-an-address") {
						t.Fatalf("seed %d step %d: config %v is not a variant of the given one", seed, i+1, st.Config)
					}
				}
			}
			if st.Create != nil {
				ns, _, _ := strings.Cut(st.Create.Service, "/")
				if !slices.Contains([]string{"default", "finance", "elsewhere"}, ns) {
					t.Fatalf("seed %d step %d: namespace %q is not one of the config's", seed, i+1, ns)
				}
				if ip := st.Create.LoadBalancerIP; ip != nil {
					requested++
					if !near(*ip) {
						t.Fatalf("seed %d step %d: requested %s, outside the config's pools", seed, i+1, *ip)
					}
				}
			}
		}
		if _, err := Run(sc, Options{}); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	if requested == 0 {
		t.Fatal("no requested address in 30 scenarios")
	}
}
