package engine

import (
	"context"
	"net/netip"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// The managers of address claims (the label ipaddress.kubernetes.io/managed-by
// of networking.k8s.io/v1 IPAddress objects).
const (
	// ManagedBy marks the claims of this provider.
	ManagedBy = "kube-vip-cloud-provider.kube-vip.io"
	// ClusterIPManager marks the claims of the API server's ClusterIP
	// allocator.
	ClusterIPManager = "ipallocator.k8s.io"
	// SharersAnnotation, on a claim of ours, lists the Services that share
	// its address with the parent ("namespace/name", comma-separated).
	SharersAnnotation = "kube-vip-cloud-provider.kube-vip.io/sharers"
)

// Claim is the API server's record that one address is taken: an IPAddress
// object named by the address, whose parent is a Service.
type Claim struct {
	Addr netip.Addr
	// Owner is the parent Service's "namespace/name"; empty when the
	// parent is not a Service.
	Owner string
	// Sharers are the Services recorded as sharing the address with
	// Owner. A claim is never changed in place: a new sharer deletes it
	// and creates it again, so that two controllers admitting sharers at
	// once cannot both succeed.
	Sharers []string
	// Manager is the claim's managed-by label.
	Manager string
	// ID is the object's identity (its UID): Delete removes only that one.
	ID string
	// Created is when the claim was made.
	Created time.Time
}

// holders returns the Services the claim names: its owner, then its
// sharers.
func (c Claim) holders() []string {
	if c.Owner == "" {
		return nil
	}
	return append([]string{c.Owner}, c.Sharers...)
}

// Ours reports whether the claim is one this provider made for one of its
// Services (managed by ManagedBy, its parent a Service).
func (c Claim) Ours() bool { return c.Manager == ManagedBy && c.Owner != "" }

// names reports whether the claim, one of ours, names the Service key.
func (c Claim) names(key string) bool {
	return c.Manager == ManagedBy && slices.Contains(c.holders(), key)
}

// Claims are the address claims: uniqueness enforced by the API server,
// beyond what one process's memory can promise. Create must fail with
// AlreadyExists, returning the claim that exists, when another object
// holds the address.
type Claims interface {
	// Get returns the claim of addr as the cache shows it.
	Get(addr netip.Addr) (Claim, bool)
	// List returns every claim the cache shows.
	List() []Claim
	// Naming returns the claims of ours that name the Service key, as its
	// owner or among its sharers, as the cache shows them.
	Naming(key string) []Claim
	// Create claims addr for the Service named owner, recording sharers
	// as the Services that share it.
	Create(ctx context.Context, addr netip.Addr, owner string, sharers []string) (Claim, error)
	// Delete removes the claim c, only if it is still c (its ID): a
	// Conflict when another claim of the address has replaced it,
	// NotFound when there is none.
	Delete(ctx context.Context, c Claim) error
}

// goneOrReplaced reports whether a Delete failed because the claim was no longer
// there: deleted, or replaced by another.
func goneOrReplaced(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}
