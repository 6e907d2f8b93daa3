//go:build !mutants

package engine

import (
	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// newLedger returns a ledger that starts from usage; without the tag
// mutants there are no flaws to give it.
func newLedger(usage *allocator.Usage, _ mutant.Flaws) *decide.Ledger {
	return decide.NewLedger(usage)
}
