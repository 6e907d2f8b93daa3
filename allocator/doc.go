// Package allocator is the pure IP address management core of
// kube-vip-cloud-provider: it parses the pools an operator writes into the
// kubevip ConfigMap, keeps track of the addresses in use, and picks addresses
// for a request (single- or dual-stack, shared or exclusive).
//
// It must never import a Kubernetes package: the controller and the
// simulator turn a Service into the small Request type understood here.
//
// Costs: choosing a free address is O(log n) in the number of addresses in
// use (plus the number of disjoint pool spans that are completely full), and
// does not depend on the size of the pool, so an IPv6 /64 is as cheap as a
// /28.
package allocator
