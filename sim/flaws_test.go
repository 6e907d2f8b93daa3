package sim

import (
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// flawBudget is how many random scenarios (seeds 1 to flawBudget, of
// flawSteps steps each) the explorer gets to catch each broken engine; the
// real engine must pass every one of them.
const (
	flawBudget = 600
	flawSteps  = 100
)

// TestTheExplorerCatchesEveryBrokenEngine proves the simulator can fail:
// each deliberately broken engine (a bug this controller had, or one a
// controller of its kind could have) breaks an invariant within the
// budget, while the real engine keeps them all over the same seeds.
func TestTheExplorerCatchesEveryBrokenEngine(t *testing.T) {
	flaws := []struct {
		name  string
		flaws decide.Flaws
	}{
		{"forget lost answers", decide.Flaws{ForgetLostWrites: true}},
		{"release the whole holding on a 409", decide.Flaws{ReleaseWholeOn409: true}},
		{"no ledger", decide.Flaws{NoLedger: true}},
		{"share with unmanaged holders", decide.Flaws{ShareWithUnmanaged: true}},
	}
	scenarios := make([]*Scenario, flawBudget)
	for i := range scenarios {
		scenarios[i] = Random(int64(i+1), flawSteps, nil)
	}
	for _, f := range flaws {
		t.Run(f.name, func(t *testing.T) {
			for i, sc := range scenarios {
				_, err := Run(sc, Options{Flaws: f.flaws})
				if IsFailure(err) {
					t.Logf("caught at seed %d of %d: %v", i+1, flawBudget, err)
					return
				}
				if err != nil {
					t.Fatalf("seed %d: %v", i+1, err)
				}
			}
			t.Fatalf("no invariant broken in %d seeds: the simulator cannot tell this broken engine from the real one", flawBudget)
		})
	}
	t.Run("the real engine", func(t *testing.T) {
		for i, sc := range scenarios {
			if _, err := Run(sc, Options{}); err != nil {
				t.Fatalf("seed %d: %v", i+1, err)
			}
		}
	})
}

// TestDefectScenariosFailOnTheBrokenEngine: the scenarios that pin a
// fixed defect fail when the defect is put back.
func TestDefectScenariosFailOnTheBrokenEngine(t *testing.T) {
	for file, flaws := range map[string]decide.Flaws{
		"scenarios/19-unmanaged-never-shared.yaml":            {ShareWithUnmanaged: true},
		"scenarios/21-refused-write-keeps-users-address.yaml": {ReleaseWholeOn409: true},
		"scenarios/15-lost-answers.yaml":                      {ForgetLostWrites: true},
	} {
		sc, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(sc, Options{}); err != nil {
			t.Fatalf("%s with the real engine: %v", file, err)
		}
		if _, err := Run(sc, Options{Flaws: flaws}); !IsFailure(err) {
			t.Errorf("%s with %+v: %v, want a failed expect or a broken invariant", file, flaws, err)
		}
	}
}
