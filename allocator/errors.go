package allocator

import (
	"fmt"
	"net/netip"
)

// Reason is a machine-readable cause of a failed allocation. The controller
// puts it in the message of its AllocationFailed Event.
type Reason string

// The reasons an allocation can fail.
const (
	// ReasonExhausted: every allocatable address of the pool is in use.
	ReasonExhausted Reason = "PoolExhausted"
	// ReasonNoPool: neither the namespace nor global has a (valid) pool.
	ReasonNoPool Reason = "NoPool"
	// ReasonFamilyUnavailable: the pool has no address of a needed family.
	ReasonFamilyUnavailable Reason = "FamilyUnavailable"
	// ReasonConflict: a requested address is held by an incompatible Service.
	ReasonConflict Reason = "Conflict"
	// ReasonInvalidRequest: the request itself is malformed.
	ReasonInvalidRequest Reason = "InvalidRequest"
)

// Error is the error Allocate returns; use errors.As to read its Reason.
type Error struct {
	Reason Reason
	// Pool is the pool involved ("global" or a namespace), when there is one.
	Pool string
	// Family is the family involved, when one is.
	Family Family
	// Addr is the address involved in a conflict or invalid request.
	Addr netip.Addr
	// Holder is the Service that holds Addr, for a conflict.
	Holder string
	// Detail says the rest in words.
	Detail string
}

// Error implements error.
func (e *Error) Error() string {
	switch e.Reason {
	case ReasonExhausted:
		return fmt.Sprintf("%s: no free %s address in pool %q", e.Reason, e.Family, e.Pool)
	case ReasonNoPool:
		if e.Detail != "" {
			return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
		}
		return fmt.Sprintf("%s: no pool for namespace %q and no global pool", e.Reason, e.Pool)
	case ReasonFamilyUnavailable:
		return fmt.Sprintf("%s: pool %q has no %s addresses", e.Reason, e.Pool, e.Family)
	case ReasonConflict:
		return fmt.Sprintf("%s: address %s is held by %s: %s", e.Reason, e.Addr, e.Holder, e.Detail)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
}
