//go:build mutants

package sim

import (
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// flawBudget is how many random scenarios (seeds 1 to flawBudget, of
// flawSteps steps each) the explorer gets to catch each broken engine; the
// real engine must pass every one of them.
const (
	flawBudget = 1000
	flawSteps  = 100
	// sharerSteps is longer, and sharerBudget larger: the race of two
	// sharers needs a split brain over an address shared while it lasts
	// (first drawn at seed 1084 of 200 steps).
	sharerSteps  = 200
	sharerBudget = 3000
)

// TestTheExplorerCatchesEveryBrokenEngine proves the simulator can fail:
// each deliberately broken engine (a bug this controller had, or one a
// controller of its kind could have) breaks an invariant within the
// budget, while the real engine keeps them all over the same seeds.
func TestTheExplorerCatchesEveryBrokenEngine(t *testing.T) {
	flaws := []struct {
		name  string
		flaws mutant.Flaws
	}{
		{"forget lost answers", mutant.Flaws{ForgetLostWrites: true}},
		{"release the whole holding on a 409", mutant.Flaws{ReleaseWholeOn409: true}},
		{"no ledger", mutant.Flaws{NoLedger: true}},
		{"share with unmanaged holders", mutant.Flaws{ShareWithUnmanaged: true}},
	}
	// The broken engines run without the API server's claims behind their
	// ledger; so does the real engine they are held against. Seeds where
	// two controllers act at once (active: 2) break even the real engine
	// without claims: they prove nothing about a flaw and are left out.
	var scenarios []*Scenario
	for seed := int64(1); seed <= flawBudget; seed++ {
		sc := Random(seed, flawSteps, nil)
		if _, err := Run(sc, Options{NoClaims: true}); err == nil {
			scenarios = append(scenarios, sc)
		}
	}
	if len(scenarios) < flawBudget/2 {
		t.Fatalf("only %d of %d seeds keep the invariants without claims", len(scenarios), flawBudget)
	}
	for _, f := range flaws {
		t.Run(f.name, func(t *testing.T) {
			for _, sc := range scenarios {
				_, err := Run(sc, Options{NoClaims: true, Flaws: f.flaws})
				if IsFailure(err) {
					t.Logf("caught at seed %d of %d: %v", sc.Seed, flawBudget, err)
					return
				}
				if err != nil {
					t.Fatalf("seed %d: %v", sc.Seed, err)
				}
			}
			t.Fatalf("no invariant broken in %d seeds: the simulator cannot tell this broken engine from the real one", len(scenarios))
		})
	}
	t.Run("the real engine, with claims, on every seed", func(t *testing.T) {
		for seed := int64(1); seed <= flawBudget; seed++ {
			if _, err := Run(Random(seed, flawSteps, nil), Options{}); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		}
	})
}

// TestDefectScenariosFailOnTheBrokenEngine: the scenarios that pin a
// fixed defect fail when the defect is put back.
func TestDefectScenariosFailOnTheBrokenEngine(t *testing.T) {
	for file, flaws := range map[string]mutant.Flaws{
		"scenarios/19-unmanaged-never-shared.yaml":                   {ShareWithUnmanaged: true},
		"scenarios/21-refused-write-keeps-users-address.yaml":        {ReleaseWholeOn409: true},
		"scenarios/15-lost-answers.yaml":                             {ForgetLostWrites: true},
		"scenarios/31-waiting-served-oldest-first-out-of-order.yaml": {Unfair: true},
	} {
		sc, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(sc, Options{}); err != nil {
			t.Fatalf("%s with the real engine: %v", file, err)
		}
		if _, err := Run(sc, Options{NoClaims: true, Flaws: flaws}); !IsFailure(err) {
			t.Errorf("%s with %+v: %v, want a failed expect or a broken invariant", file, flaws, err)
		}
	}
}

// TestClaimsKeepTwoActiveControllersApart: with active: 2 both replicas
// act as leader, each with its own cache and ledger. Without address
// claims the explorer finds the double allocation; with them, the same
// seeds break nothing.
func TestClaimsKeepTwoActiveControllersApart(t *testing.T) {
	caught := 0
	for seed := int64(1); seed <= flawBudget; seed++ {
		sc := Random(seed, flawSteps, nil)
		if _, err := Run(sc, Options{}); err != nil {
			t.Fatalf("seed %d with claims: %v", seed, err)
		}
		if caught == 0 {
			if _, err := Run(sc, Options{NoClaims: true}); IsFailure(err) {
				t.Logf("without claims, caught at seed %d: %v", seed, err)
				caught++
			}
		}
	}
	if caught == 0 {
		t.Fatalf("without claims, no seed of %d broke an invariant: the model cannot tell what claims prevent", flawBudget)
	}
}

// TestSharersOnTheClaimKeepTwoActiveControllersApart: two controllers
// acting at once each let in a sharer of one address. With the sharers
// recorded on the address's claim, one of the two fails and decides again
// knowing the other; with sharers left off the claim (the broken engine),
// the explorer finds two Services with colliding ports on one address.
func TestSharersOnTheClaimKeepTwoActiveControllersApart(t *testing.T) {
	broken := Options{Flaws: mutant.Flaws{UnrecordedSharers: true}}
	for seed := int64(1); seed <= sharerBudget; seed++ {
		sc := Random(seed, sharerSteps, nil)
		_, err := Run(sc, broken)
		if err != nil && !IsFailure(err) {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if IsFailure(err) {
			t.Logf("sharers off the claim: caught at seed %d: %v", seed, err)
			if _, err := Run(sc, Options{}); err != nil {
				t.Fatalf("seed %d with sharers on the claim: %v", seed, err)
			}
			return
		}
	}
	t.Fatalf("with sharers off the claim, no seed of %d broke an invariant: the model cannot tell what recording them prevents", sharerBudget)
}

// TestClaimScenariosFailOnTheirBrokenEngine: each scenario passes on the
// real engine and fails (an expect or an invariant) on the broken engine
// that brings back the bug it was written for.
func TestClaimScenariosFailOnTheirBrokenEngine(t *testing.T) {
	for _, tc := range []struct {
		file, broken string
		flaws        mutant.Flaws
	}{
		// Services deleted while no controller ran: with claims younger
		// than the grace period kept although no Service they name exists,
		// the address stays blocked.
		{"scenarios/33-deleted-while-down.yaml", "claims of deleted Services kept while young",
			mutant.Flaws{OrphanClaimsWait: true}},
		// A sharer deleted while no controller ran: with the Services a
		// claim names kept when gone for good, the claim outlives its last
		// sharer.
		{"scenarios/34-sharer-deleted-while-down.yaml", "vanished sharers kept on the claim",
			mutant.Flaws{VanishedSharersStay: true}},
		// A Service deleted and created again while no controller ran:
		// judged by creation times alone, the new one keeps its
		// predecessor's claim, and the address stays blocked.
		{"scenarios/37-recreated-while-down.yaml", "claims judged without their UIDs",
			mutant.Flaws{ClaimUIDsIgnored: true}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			sc, err := Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Run(sc, Options{}); err != nil {
				t.Fatalf("with the real engine: %v", err)
			}
			if _, err := Run(sc, Options{Flaws: tc.flaws}); !IsFailure(err) {
				t.Errorf("with %s: %v, want a failed expect or a broken invariant", tc.broken, err)
			}
		})
	}
}
