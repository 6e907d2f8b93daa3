// Package engine is the controller's sync protocol, written once: the
// ledger of its own writes, the Services waiting for an address, settling a
// write whose answer was lost (and resending it), wake-ups (the waiting
// served oldest first, whatever order their syncs come in), the memory of
// Events already recorded, reporting a malformed ConfigMap key once, and
// release on delete and type change, and the address claims
// (claims.go the model, reserve.go their place in the ledger, claim.go
// claiming, release.go, repair.go).
//
// SyncService returns a Result (Done, Wait, BackOff) that the adapters
// follow; the engine itself wakes every Service at Start and on a new
// ConfigMap, and the waiting ones whenever an address frees up (freeLocked
// marks the moment under the lock, free then releases the claims and
// wakes them).
//
// It talks to the cluster only through small interfaces (Cluster,
// Recorder, Observer and a wake-up function). Two adapters drive it: the
// client-go controller (informers, a workqueue, leader election) and the
// simulator's in-memory cluster. So every seed the simulator explores runs
// the controller's own code. It must not import client-go.
package engine
