package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
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
	// UIDsAnnotation, on a claim of ours, records the UID of each Service
	// it names ("namespace/name=uid", comma-separated, the owner first):
	// a Service of that name with another UID is not the one the claim
	// was made for. Claims made by versions before it have none.
	UIDsAnnotation = "kube-vip-cloud-provider.kube-vip.io/uids"
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
	// UIDs maps the Services the claim names to the UIDs of those it was
	// made for; a Service without an entry (every one, on a claim made by
	// an older version) is judged by its creation time (see madeFor).
	UIDs map[string]string
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
	// Create makes the claim c: its address for the Service c.Owner,
	// recording c.Sharers as the Services that share it and c.UIDs as
	// their UIDs (ID and Created are the store's to set).
	Create(ctx context.Context, c Claim) (Claim, error)
	// Delete removes the claim c, only if it is still c (its ID): a
	// Conflict when another claim of the address has replaced it,
	// NotFound when there is none.
	Delete(ctx context.Context, c Claim) error
}

// FormatUIDs writes the UIDsAnnotation of a claim naming holders (the
// owner first): "namespace/name=uid" for each that has a UID in uids, in
// the order of holders; empty when none has.
func FormatUIDs(holders []string, uids map[string]string) string {
	var b strings.Builder
	for _, h := range holders {
		if uid := uids[h]; uid != "" {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(h + "=" + uid)
		}
	}
	return b.String()
}

// ParseUIDs reads a UIDsAnnotation: nil for an empty value; an error
// quoting the value when an entry is no "namespace/name=uid" or names a
// Service twice with different UIDs (a claim with such a value is read as
// one that records none).
func ParseUIDs(v string) (map[string]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, entry := range strings.Split(v, ",") {
		key, uid, ok := strings.Cut(strings.TrimSpace(entry), "=")
		ns, name, slash := strings.Cut(key, "/")
		if !ok || !slash || ns == "" || name == "" || strings.Contains(name, "/") || uid == "" {
			return nil, fmt.Errorf("annotation %s=%q: entry %q is not namespace/name=uid", UIDsAnnotation, v, entry)
		}
		if prev, dup := out[key]; dup && prev != uid {
			return nil, fmt.Errorf("annotation %s=%q: %s has two UIDs", UIDsAnnotation, v, key)
		}
		out[key] = uid
	}
	return out, nil
}

// goneOrReplaced reports whether a Delete failed because the claim was no longer
// there: deleted, or replaced by another.
func goneOrReplaced(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}
