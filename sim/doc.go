// Package sim is a deterministic simulator of kube-vip-cloud-provider: an
// in-memory cluster (Services, the ConfigMap, resourceVersions, a write log)
// driven by the controller's own decision code (controller/decide), with
// the hazards that make controllers wrong in practice: informer caches that
// lag the API server, write conflicts, restarts, leader hand-overs, and
// config changes mid-burst. The same scenario and seed always give the same
// trace. After every step it checks the invariants.
//
// It must never import client-go: it runs on plain API types.
package sim
