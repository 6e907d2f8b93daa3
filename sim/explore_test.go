package sim

import (
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

func TestShrinkKeepsAFailingScenarioSmall(t *testing.T) {
	// Without the ledger the lag model fails; the shrunk scenario still
	// fails, is smaller, and replays from its YAML.
	sc, err := ParseScenario([]byte(lagBurst))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Seed: 1, NoLedger: true}
	small := Shrink(sc, o)
	if _, err := Run(small, o); !IsFailure(err) {
		t.Fatalf("the shrunk scenario does not fail: %v", err)
	}
	if len(small.Steps) >= len(sc.Steps) {
		t.Fatalf("shrink kept all %d steps", len(sc.Steps))
	}
	raw, err := yaml.Marshal(small)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseScenario(raw)
	if err != nil {
		t.Fatalf("the shrunk scenario does not parse back: %v\n%s", err, raw)
	}
	if _, err := Run(again, o); !IsFailure(err) || !strings.Contains(err.Error(), "held by two Services") {
		t.Fatalf("the replayed file does not fail the same way: %v", err)
	}
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
	p := MakePlan(svcs, data, newData, decide.Options{})
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
