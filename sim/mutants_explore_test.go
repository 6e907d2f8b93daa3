//go:build mutants

package sim

import (
	"strings"
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
	"sigs.k8s.io/yaml"
)

func TestShrinkKeepsAFailingScenarioSmall(t *testing.T) {
	// Without the ledger the lag model fails; the shrunk scenario still
	// fails, is smaller, and replays from its YAML.
	sc, err := ParseScenario([]byte(lagBurst))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Seed: 1, NoClaims: true, Flaws: mutant.Flaws{NoLedger: true}}
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
