//go:build mutants

package sim

import (
	"errors"
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// The out-of-order fairness scenario pins the engine's deferral: the real
// engine serves the oldest waiting Service first on every seed, the engine
// without the deferral (the Unfair flaw) gives the address to the first
// one synced, and the scenario catches it.
func TestOutOfOrderSyncsStillServeTheOldestFirst(t *testing.T) {
	sc, err := Load("scenarios/31-waiting-served-oldest-first-out-of-order.yaml")
	if err != nil {
		t.Fatal(err)
	}
	caught := 0
	for seed := int64(1); seed <= 20; seed++ {
		if _, err := Run(sc, Options{Seed: seed}); err != nil {
			t.Fatalf("seed %d, the real engine: %v", seed, err)
		}
		_, err := Run(sc, Options{Seed: seed, Flaws: mutant.Flaws{Unfair: true}})
		var ee *ExpectError
		switch {
		case errors.As(err, &ee):
			caught++
		case err != nil:
			t.Fatalf("seed %d, the unfair engine: %v", seed, err)
		}
	}
	t.Logf("the unfair engine failed the scenario on %d of 20 seeds", caught)
	if caught < 10 {
		t.Errorf("the unfair engine failed the scenario on only %d of 20 seeds: it hardly pins the deferral", caught)
	}
}
