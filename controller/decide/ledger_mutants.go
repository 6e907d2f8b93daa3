//go:build mutants

package decide

import "github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"

// SetFlaws gives the ledger deliberate defects, for the broken-engine
// tests (only in a build with the tag mutants).
func (l *Ledger) SetFlaws(f mutant.Flaws) { l.flaws = f }
