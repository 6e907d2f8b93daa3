//go:build !mutants

package mutant

// Flaws are the deliberate defects a run has: none in this build (the
// correct controller).
type Flaws struct{}

// Has reports whether f is among the flaws: never in this build.
func (Flaws) Has(Flaw) bool { return false }
