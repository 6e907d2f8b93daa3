//go:build mutants

package sim

import (
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

func TestLagModelFindsTheClassicDoubleAllocationWithoutLedger(t *testing.T) {
	found := doubleAllocations(t, lagBurst, Options{NoClaims: true, Flaws: mutant.Flaws{NoLedger: true}}, nil)
	if found == 0 {
		t.Fatal("without a ledger, no seed found a double allocation: the lag model cannot fail")
	}
	t.Logf("without the ledger, %d of 20 seeds double-allocated; with it, none", found)
}

func TestLostAnswerModelFindsTheDoubleAllocationOfForgottenWrites(t *testing.T) {
	found := doubleAllocations(t, lostAnswerBurst, Options{NoClaims: true, Flaws: mutant.Flaws{ForgetLostWrites: true}}, func(seed int64, res *Result) {
		if res.Allocations != 6 {
			t.Fatalf("seed %d: %d allocations recorded, want 6 (lost answers included)", seed, res.Allocations)
		}
	})
	if found == 0 {
		t.Fatal("forgetting lost writes never double-allocated: the lost-answer model cannot fail")
	}
	t.Logf("forgetting lost writes, %d of 20 seeds double-allocated; keeping them reserved, none", found)
}
