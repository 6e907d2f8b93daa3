package decide

// The annotations, labels and names of the compatibility contract with the
// existing kube-vip-cloud-provider and with kube-vip.
const (
	// AnnotationLoadBalancerIPs holds the assigned addresses, comma-separated
	// (one per family for dual-stack). kube-vip reads it first.
	AnnotationLoadBalancerIPs = "kube-vip.io/loadbalancerIPs"
	// AnnotationServiceInterface names the interface kube-vip should use,
	// from the interface-<ns>/interface-global keys.
	AnnotationServiceInterface = "kube-vip.io/serviceInterface"
	// AnnotationIgnore set to "true" makes both us and kube-vip leave the
	// Service alone.
	AnnotationIgnore = "kube-vip.io/ignore"
	// LabelImplementation marks Services whose address this provider assigned.
	LabelImplementation = "implementation"
	// ImplementationKubeVIP is the value of LabelImplementation.
	ImplementationKubeVIP = "kube-vip"
	// LabelLegacyIPAMAddress is where very old versions of the provider kept
	// the address (besides spec.loadBalancerIP).
	LabelLegacyIPAMAddress = "ipam-address"
	// FinalizerLoadBalancerCleanup is the finalizer that Kubernetes' service
	// controller, and so the existing provider, puts on LoadBalancer
	// Services. This provider never adds it, but removes it when such a
	// Service is deleted or stops being a LoadBalancer: once the existing
	// provider is replaced, nothing else would, and the deletion would hang.
	FinalizerLoadBalancerCleanup = "service.kubernetes.io/load-balancer-cleanup"
	// DefaultLoadBalancerClass is the class handled when loadBalancerClass
	// support is enabled and no custom name is given.
	DefaultLoadBalancerClass = "kube-vip.io/kube-vip-class"
	// AnnotationMetalLBIPs is MetalLB's request annotation (comma-separated).
	AnnotationMetalLBIPs = "metallb.io/loadBalancerIPs"
	// AnnotationMetalLBLegacyIPs is older MetalLB's request annotation.
	AnnotationMetalLBLegacyIPs = "metallb.universe.tf/loadBalancerIPs"
	// AnnotationCiliumIPs is Cilium LB-IPAM's request annotation
	// (comma-separated).
	AnnotationCiliumIPs = "lbipam.cilium.io/ips"
	// AnnotationCiliumLegacyIPs is older Cilium's request annotation,
	// still read by Cilium (comma-separated).
	AnnotationCiliumLegacyIPs = "io.cilium/lb-ipam-ips"
)

// The annotations of other tools that this provider does not act on (see
// Notices and docs/other-tools.md): MetalLB's pool selection, MetalLB's
// and Cilium's sharing keys.
const (
	AnnotationMetalLBPool                = "metallb.io/address-pool"
	AnnotationMetalLBLegacyPool          = "metallb.universe.tf/address-pool"
	AnnotationMetalLBSharing             = "metallb.io/allow-shared-ip"
	AnnotationMetalLBLegacySharing       = "metallb.universe.tf/allow-shared-ip"
	AnnotationCiliumSharing              = "lbipam.cilium.io/sharing-key"
	AnnotationCiliumLegacySharing        = "io.cilium/lb-ipam-sharing-key"
	AnnotationCiliumCrossNamespace       = "lbipam.cilium.io/sharing-cross-namespace"
	AnnotationCiliumLegacyCrossNamespace = "io.cilium/lb-ipam-sharing-cross-namespace"
	AnnotationMetalLBAllocatedFrom       = "metallb.io/ip-allocated-from-pool"
	AnnotationMetalLBLegacyAllocatedFrom = "metallb.universe.tf/ip-allocated-from-pool"
)

// RequestAnnotations returns the request annotations of the tools users
// migrate from, read (in this order) when a Service carries no
// kube-vip.io/loadbalancerIPs.
func RequestAnnotations() []string {
	return []string{AnnotationMetalLBIPs, AnnotationMetalLBLegacyIPs, AnnotationCiliumIPs, AnnotationCiliumLegacyIPs}
}

// Event reasons. Each is a stable, documented contract.
const (
	// ReasonAddressAssigned (Normal): the Service got its address(es).
	ReasonAddressAssigned = "AddressAssigned"
	// ReasonAllocationFailed (Warning): no address could be given; the
	// message starts with the allocator's reason (PoolExhausted, NoPool,
	// FamilyUnavailable, Conflict, InvalidRequest).
	ReasonAllocationFailed = "AllocationFailed"
	// ReasonAddressOutsidePool (Warning): the Service keeps an address that
	// is outside its namespace's pool (requested so, or the pool changed),
	// or one automatic allocation never hands out: an IPv6 Subnet-Router
	// anycast address (low 64 bits zero), which routers answer too.
	ReasonAddressOutsidePool = "AddressOutsidePool"
	// ReasonInvalidConfig (Warning, on the ConfigMap): a key is malformed;
	// the message names the key and value and what keeps serving.
	ReasonInvalidConfig = "InvalidConfig"
	// ReasonAddressReleased (Normal): the Service stopped being a managed
	// LoadBalancer and its address was released.
	ReasonAddressReleased = "AddressReleased"
	// ReasonAddressClaimConflict (Warning): another manager's IPAddress
	// claims an address the Service holds.
	ReasonAddressClaimConflict = "AddressClaimConflict"
	// ReasonUnknownConfigKey (Normal, on the ConfigMap): a key the
	// controller does not understand, ignored; the message names it and
	// the known key it is most likely a typo of.
	ReasonUnknownConfigKey = "UnknownConfigKey"
	// ReasonUnsupportedAnnotation (Warning, on the Service): an annotation
	// that asks for something this provider will not do as written: a
	// kube-vip.io/ignore value other than "true", a wrongly spelt or cased
	// key of ours, another tool's pool or sharing annotation, another
	// tool's request that differs from the one in force. Once per Service
	// and value; the message says what to use instead.
	ReasonUnsupportedAnnotation = "UnsupportedAnnotation"
	// ReasonConfigNotice (Normal, on the ConfigMap): a key that is taken,
	// but maybe not as meant: a CIDR with host bits set, read as the
	// network it falls in; the message names the key, the entry and the
	// range it means.
	ReasonConfigNotice = "ConfigNotice"
)
