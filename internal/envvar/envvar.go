// Package envvar names the environment variables of the compatibility
// contract with the existing kube-vip-cloud-provider, once for every command
// that reads them. It holds names only, and imports nothing.
package envvar

const (
	// ConfigMap names the ConfigMap with the pools (default kubevip).
	ConfigMap = "KUBEVIP_CONFIG_MAP"
	// Namespace is the namespace of that ConfigMap (default kube-system).
	Namespace = "KUBEVIP_NAMESPACE"
	// EnableLoadBalancerClass, when true, makes the controller handle only
	// Services of the loadBalancerClass LoadBalancerClassName names.
	EnableLoadBalancerClass = "KUBEVIP_ENABLE_LOADBALANCERCLASS"
	// LoadBalancerClassName overrides the loadBalancerClass handled
	// (default kube-vip.io/kube-vip-class).
	LoadBalancerClassName = "KUBEVIP_CUSTOM_LOADBALANCERCLASS_NAME"
)
