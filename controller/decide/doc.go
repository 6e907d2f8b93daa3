// Package decide is the pure decision at the heart of kube-vip-cloud-provider,
// shared by the controller and the simulator: given the parsed config, the
// addresses in use and one Service, it says what that Service should have.
//
// It reads Kubernetes API types but never talks to an API server: it must not
// import client-go. Applying a Decision (an update, an Event) is the caller's job.
package decide
