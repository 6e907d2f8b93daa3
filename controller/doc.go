// Package controller is the client-go controller of kube-vip-cloud-provider:
// informers for Services and the kubevip ConfigMap feed a rate-limited
// workqueue; each Service key is synced by the engine (controller/engine,
// which decides with the pure controller/decide package), and the decision
// is applied with one patch that names the Service's resourceVersion
// (optimistic concurrency), and Events. The queue follows the engine's
// Result: Done forgets the key, Wait and BackOff retry it with back-off. It
// never writes status.loadBalancer: kube-vip does.
package controller
