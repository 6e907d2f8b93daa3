package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// claimant is the ledger owner that stands for c, a claim of an address
// by someone the ledger does not know as its holder (another manager, the
// ClusterIP allocator, a Service that is not ours): the address is in
// use, never handed out. The engine tells these owners from Services by
// its record of them (Engine.claimants), not by how they are spelt.
func claimant(c Claim) string {
	switch {
	case c.Manager == ClusterIPManager:
		return fmt.Sprintf("the ClusterIP %s (the pool overlaps the service CIDR)", c.Addr)
	case c.Owner != "":
		return fmt.Sprintf("IPAddress %s (claimed for %s by %s)", c.Addr, c.Owner, c.Manager)
	}
	return fmt.Sprintf("IPAddress %s (managed by %s)", c.Addr, c.Manager)
}

// reserveFor reserves c's address in the ledger for its claimant; mu is
// held.
func (e *Engine) reserveFor(c Claim) {
	o := claimant(c)
	e.claimants[o] = true
	e.ledger.Usage().Assign(allocator.Holding{Owner: o, Addrs: []netip.Addr{c.Addr}, Exclusive: true})
}

// releaseClaimant drops the ledger owner o, one that stood for a claim;
// mu is held.
func (e *Engine) releaseClaimant(o string) {
	delete(e.claimants, o)
	e.ledger.Usage().Release(o)
}

// ClaimSeen tells the engine that the cache shows c. An address claimed by
// anyone but one of this provider's Services is in use: never handed out.
func (e *Engine) ClaimSeen(c Claim) {
	if c.Ours() {
		return // one of ours: the ledger knows it from the Service
	}
	e.mu.Lock()
	e.reserveFor(c)
	e.mu.Unlock()
}

// ClaimGone tells the engine that the claim c is gone: if it held the
// address for someone else, the address is free, and the Services waiting
// for one are woken.
func (e *Engine) ClaimGone(c Claim) {
	e.mu.Lock()
	delete(e.made, c.ID)
	_, held := e.ledger.Usage().Holding(claimant(c))
	e.releaseClaimant(claimant(c))
	if held {
		e.freeLocked()
	}
	e.mu.Unlock()
	if held {
		e.free(context.Background(), "", nil)
	}
}

// registerClaims reserves, at start, every address claimed by anyone but
// a Service of ours, but for the claims freed (their IDs) at start. A claim of ours on an address one of our Services
// holds is left to the repair (it moves the claim to the holder): reserved
// for a claimant, it would report the holder's own address as a Conflict.
// mu is held.
func (e *Engine) registerClaims(freed map[string]bool) {
	for _, c := range e.claims.List() {
		if freed[c.ID] || c.Ours() && e.heldByOurs(c.Addr) {
			continue
		}
		e.reserveFor(c)
	}
}

// heldByOurs reports whether a Service of ours holds a as its own; mu is
// held.
func (e *Engine) heldByOurs(a netip.Addr) bool {
	for _, o := range e.ledger.Usage().Holders(a) {
		if !e.claimants[o] && e.holdsValidly(o, a) {
			return true
		}
	}
	return false
}

// holdsValidly reports whether owner holds a as its own in the ledger
// (not contested, not only served on it); mu is held.
func (e *Engine) holdsValidly(owner string, a netip.Addr) bool {
	h, ok := e.ledger.Usage().Holding(owner)
	return ok && !h.Contested && !h.Releasing && slices.Contains(h.Addrs, a)
}

// otherHolders returns the Services other than key that hold a as their
// own in the ledger; mu is not held.
func (e *Engine) otherHolders(a netip.Addr, key string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, o := range e.ledger.Usage().Holders(a) {
		if o != key && !e.claimants[o] && e.holdsValidly(o, a) {
			out = append(out, o)
		}
	}
	return out
}

// asks reports whether the Service key, as the cache shows it, asks for a
// itself (annotation, spec.loadBalancerIP).
func (e *Engine) asks(key string, a netip.Addr) bool {
	svc, ok := e.cluster.Cached(key)
	if !ok {
		return false
	}
	as, _, _ := decide.Addresses(svc)
	return slices.Contains(as, a)
}

// servedOn reports whether the ledger has the Service key holding or
// served on a; mu is held.
func (e *Engine) servedOn(key string, a netip.Addr) bool {
	h, ok := e.ledger.Usage().Holding(key)
	return ok && (slices.Contains(h.Addrs, a) || slices.Contains(h.Also, a))
}

// promote makes the Service key a holder of a in the ledger, as an
// address claim says it is: a moves from what it is only served on to
// what it holds, and its holding is no longer contested. It reports false
// when the ledger has key neither holding nor served on a, or has it
// holding exclusively or releasing (never a sharer). mu is held.
func (e *Engine) promote(key string, a netip.Addr) bool {
	h, _ := e.ledger.Usage().Holding(key)
	if !e.servedOn(key, a) || h.Exclusive || h.Releasing {
		return false
	}
	if !slices.Contains(h.Addrs, a) {
		h.Also = slices.DeleteFunc(slices.Clone(h.Also), func(b netip.Addr) bool { return b == a })
		h.Addrs = append(slices.Clone(h.Addrs), a)
	}
	h.Contested = false
	e.ledger.Usage().Assign(h)
	return true
}
