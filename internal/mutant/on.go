//go:build mutants

package mutant

// Flaws are the deliberate defects a run has; the zero value is the
// correct controller. Each field is the Flaw of the same name.
type Flaws struct {
	ForgetLostWrites    bool
	ReleaseWholeOn409   bool
	NoLedger            bool
	ShareWithUnmanaged  bool
	UnrecordedSharers   bool
	Unfair              bool
	OrphanClaimsWait    bool
	VanishedSharersStay bool
	ClaimUIDsIgnored    bool
}

// Has reports whether f is among the flaws.
func (fs Flaws) Has(f Flaw) bool {
	switch f {
	case ForgetLostWrites:
		return fs.ForgetLostWrites
	case ReleaseWholeOn409:
		return fs.ReleaseWholeOn409
	case NoLedger:
		return fs.NoLedger
	case ShareWithUnmanaged:
		return fs.ShareWithUnmanaged
	case UnrecordedSharers:
		return fs.UnrecordedSharers
	case Unfair:
		return fs.Unfair
	case OrphanClaimsWait:
		return fs.OrphanClaimsWait
	case VanishedSharersStay:
		return fs.VanishedSharersStay
	case ClaimUIDsIgnored:
		return fs.ClaimUIDsIgnored
	}
	return false
}
