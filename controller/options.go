package controller

import (
	"errors"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// Defaults of the compatibility contract.
const (
	DefaultConfigMapName      = "kubevip"
	DefaultConfigMapNamespace = "kube-system"
	// FieldManager is the manager name of our writes (managedFields).
	FieldManager = "kube-vip-cloud-provider"
	// Component is the source of our Events.
	Component = "kube-vip-cloud-provider"
)

// Options configure a Controller.
type Options struct {
	// ConfigMapName and ConfigMapNamespace locate the kubevip ConfigMap.
	ConfigMapName      string
	ConfigMapNamespace string
	// Decide selects which Services are handled (loadBalancerClass).
	Decide decide.Options
	// Workers is how many keys are processed in parallel (default 8).
	Workers int
	// RetryBaseDelay and RetryMaxDelay bound the back-off of failed
	// Services (defaults 250ms and 1m); they are also retried at once when
	// an address is freed or the ConfigMap changes.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// Metrics receives the controller's metrics; nil records none.
	Metrics *Metrics
	// ShutdownGrace bounds how long the syncs in flight may take to finish
	// once Run's context is cancelled with ErrShuttingDown (default 5s).
	ShutdownGrace time.Duration
	// Abort, when closed, cuts the syncs in flight off at once, even during
	// the graceful drain of ErrShuttingDown: a lost Lease, say.
	Abort <-chan struct{}
	// AddressClaims claims every address given out in the API server
	// first (one networking.k8s.io/v1 IPAddress per address), when the API
	// server serves IPAddress objects.
	AddressClaims bool
	// RepairInterval is how often the claims are repaired (default 1m).
	RepairInterval time.Duration
	// ClaimGrace is how old a stale claim of ours must be before the
	// repair deletes it (default 1m).
	ClaimGrace time.Duration
	// EventClient, when set, records Events instead of the main client, so
	// that Events do not share the main client's rate limit with the writes
	// that assign addresses.
	EventClient kubernetes.Interface
}

// ErrShuttingDown is the cause to cancel Run's context with for a graceful
// shutdown: the writes in flight are finished, not cut off.
var ErrShuttingDown = errors.New("shutting down")

func (o *Options) defaults() {
	if o.ConfigMapName == "" {
		o.ConfigMapName = DefaultConfigMapName
	}
	if o.ConfigMapNamespace == "" {
		o.ConfigMapNamespace = DefaultConfigMapNamespace
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.RetryBaseDelay <= 0 {
		o.RetryBaseDelay = 250 * time.Millisecond
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = time.Minute
	}
	if o.RepairInterval <= 0 {
		o.RepairInterval = time.Minute
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 5 * time.Second
	}
}
