// Package controller is the client-go controller of kube-vip-cloud-provider:
// informers for Services and the kubevip ConfigMap feed a rate-limited
// workqueue; each Service key is decided by the pure controller/decide
// package and the decision applied with one optimistic-concurrency Update
// and Events. It never writes status.loadBalancer: kube-vip does.
package controller
