// Package sim is a deterministic simulator of kube-vip-cloud-provider: an
// in-memory cluster (Services, the ConfigMap, address claims,
// resourceVersions, a write log) driven by the controller's own sync engine
// (controller/engine, one per simulated replica), with the hazards that make
// controllers wrong in practice: informer caches that lag the API server,
// write conflicts, lost answers and dropped writes, restarts, leader
// hand-overs, two controllers acting at once, and config changes
// mid-burst. Like the client-go controller it follows the engine's Result
// (BackOff: retried once idle; Wait: parked until the engine wakes it;
// Done). The same scenario and seed always give the same trace. It checks
// the invariants (invariants.go) on every write the controller makes, and
// again once the controller has settled.
//
// It must never import client-go: it runs on plain API types.
package sim
