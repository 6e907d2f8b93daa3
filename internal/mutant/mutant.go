// Package mutant names the deliberately broken variants of the controller's
// engine: each brings back a bug that a controller of this kind has or could
// have, so that a test can show that the simulator's invariants (and the
// engine's own tests) catch it. A check is trusted only after it was seen to
// fail on one of them.
//
// They exist only in a build with the tag mutants
// (go test -tags mutants ./controller/decide/... ./controller/engine/... ./sim/...).
// In every other build Flaws is an empty struct and Flaws.Has a constant
// false, so the product carries none of them. Imports nothing.
package mutant

// Flaw is one deliberate defect.
type Flaw uint8

// The flaws.
const (
	// ForgetLostWrites takes a write whose answer was lost for a refused
	// one, freeing its addresses at once.
	ForgetLostWrites Flaw = iota + 1
	// ReleaseWholeOn409 frees everything a Service holds when a write of
	// it is refused, also what it came to carry meanwhile.
	ReleaseWholeOn409
	// NoLedger decides from the cache alone, without the record of the
	// controller's own writes.
	NoLedger
	// ShareWithUnmanaged lets Services this controller does not manage
	// share their addresses.
	ShareWithUnmanaged
	// UnrecordedSharers lets a Service share an address under the claim of
	// the Service it shares with, without being recorded on the claim.
	UnrecordedSharers
	// Unfair lets any Service take an address that frees up, not the
	// one that has waited longest (the engine's deferral is off).
	Unfair
	// OrphanClaimsWait keeps a claim younger than the grace period even
	// when no Service it names exists any more (deleted while no
	// controller ran, say): its address stays blocked until the repair
	// judges it old enough.
	OrphanClaimsWait
	// VanishedSharersStay keeps, when a Service leaves a shared address's
	// claim, the other Services the claim names although they were
	// deleted unseen (while no controller ran, say): the claim outlives
	// its last sharer, for a Service that does not exist.
	VanishedSharersStay
	// ClaimUIDsIgnored judges the Services a claim names by their creation
	// times alone, as if the claim recorded no UIDs: a Service deleted and
	// created again no later than its predecessor's claim (within its
	// second, on an API server) keeps that claim.
	ClaimUIDsIgnored
)
