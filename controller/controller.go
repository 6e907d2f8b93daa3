package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
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

// configKeyPrefix marks the queue key of the ConfigMap; no Service key can
// start with it (a namespace cannot contain ':').
const configKeyPrefix = "configmap:"

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
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 5 * time.Second
	}
}

// Controller assigns addresses to LoadBalancer Services.
type Controller struct {
	client   kubernetes.Interface
	opts     Options
	factory  informers.SharedInformerFactory
	cmFactor informers.SharedInformerFactory
	services corelisters.ServiceLister
	cms      corelisters.ConfigMapLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	events   record.EventBroadcaster
	recorder record.EventRecorder

	mu     sync.Mutex
	ledger *decide.Ledger
	config configState
	// waiting holds the Services that could not get an address; they are
	// retried at once when an address is freed.
	waiting map[string]bool
	// seen de-duplicates repeated Events per Service.
	seen *decide.EventMemory
	// configEvent is the ConfigMap version whose errors were last reported,
	// configReported those errors' messages.
	configEvent    string
	configReported map[string]bool

	ready atomic.Bool
	// stopping is set once Run's context is done: workers take no new key.
	stopping atomic.Bool
}

// New returns a Controller; Run starts it.
func New(client kubernetes.Interface, opts Options) *Controller {
	opts.defaults()
	c := &Controller{
		client:  client,
		opts:    opts,
		factory: informers.NewSharedInformerFactory(client, 0),
		ledger:  decide.NewLedger(nil),
		waiting: map[string]bool{},
		seen:    decide.NewEventMemory(),
	}
	c.cmFactor = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(opts.ConfigMapNamespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", opts.ConfigMapName).String()
		}))
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](opts.RetryBaseDelay, opts.RetryMaxDelay),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "services"})

	svcInformer := c.factory.Core().V1().Services()
	// managedFields are a large share of a cached Service and never read here.
	_ = svcInformer.Informer().SetTransform(stripManagedFields)
	c.services = svcInformer.Lister()
	_, _ = svcInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueService,
		UpdateFunc: func(_, obj interface{}) { c.enqueueService(obj) },
		DeleteFunc: c.enqueueService,
	})
	cmInformer := c.cmFactor.Core().V1().ConfigMaps()
	c.cms = cmInformer.Lister()
	cmKey := configKeyPrefix + opts.ConfigMapNamespace + "/" + opts.ConfigMapName
	onCM := func(interface{}) { c.queue.Add(cmKey) }
	_, _ = cmInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onCM,
		UpdateFunc: func(_, obj interface{}) { onCM(obj) },
		DeleteFunc: onCM,
	})
	c.synced = []cache.InformerSynced{svcInformer.Informer().HasSynced, cmInformer.Informer().HasSynced}

	c.events = record.NewBroadcaster()
	c.recorder = c.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Component})
	if opts.Metrics != nil {
		opts.Metrics.attach(c)
	}
	return c
}

// stripManagedFields drops metadata.managedFields from objects entering the
// cache: they are a large share of a cached Service and never read here
// (our patches leave them out, so they never touch them).
func stripManagedFields(obj interface{}) (interface{}, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

func (c *Controller) enqueueService(obj interface{}) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	if svc, ok := obj.(*corev1.Service); ok {
		// Reserve what it carries now, not when its turn comes.
		c.mu.Lock()
		c.ledger.Observe(svc)
		c.mu.Unlock()
	}
	c.queue.Add(key)
}

// Ready reports whether the controller has synced its caches and rebuilt
// its ledger.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Run starts the informers, rebuilds the ledger from the Services (the
// cluster is the only state), then processes keys until ctx is done. It
// returns once every worker has stopped.
func (c *Controller) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()

	c.events.StartStructuredLogging(4)
	eventClient := c.client
	if c.opts.EventClient != nil {
		eventClient = c.opts.EventClient
	}
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: eventClient.CoreV1().Events("")})
	defer c.events.Shutdown()

	c.factory.Start(ctx.Done())
	c.cmFactor.Start(ctx.Done())
	defer c.factory.Shutdown()
	defer c.cmFactor.Shutdown()
	logger.Info("Waiting for caches to sync")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil // asked to stop before we started: not a failure
		}
		return errors.New("caches did not sync")
	}

	cm, err := c.cms.ConfigMaps(c.opts.ConfigMapNamespace).Get(c.opts.ConfigMapName)
	if apierrors.IsNotFound(err) {
		cm = nil
		logger.Info("ConfigMap not found: no pools until it is created",
			"configMap", klog.KRef(c.opts.ConfigMapNamespace, c.opts.ConfigMapName))
	} else if err != nil {
		return fmt.Errorf("read ConfigMap %s/%s: %w", c.opts.ConfigMapNamespace, c.opts.ConfigMapName, err)
	}
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list Services: %w", err)
	}
	c.mu.Lock()
	c.reportConfig(ctx, cm, c.config.update(cm))
	usage, conflicts := decide.Rebuild(c.config.cfg, svcs, c.opts.Decide)
	c.ledger = decide.NewLedger(usage)
	// Services that reached the cache after the list above were observed
	// by the old ledger: observe what the cache holds now.
	if now, err := c.services.List(labels.Everything()); err == nil {
		for _, s := range now {
			c.ledger.Observe(s)
		}
	}
	c.mu.Unlock()
	logger.Info("Ledger rebuilt from the cluster", "services", len(svcs), "holding", usage.Len(), "conflicts", len(conflicts))
	for _, s := range svcs {
		c.queue.Add(decide.Key(s))
	}
	c.ready.Store(true)
	defer c.ready.Store(false)

	// Workers run on a context of their own: on a graceful shutdown (ctx
	// cancelled with ErrShuttingDown) the syncs in flight finish, for up to
	// ShutdownGrace, and keys not yet started are left to the next leader.
	// Any other cancellation, a lost leadership say, cuts them off at once:
	// another replica may be acting already.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	if c.opts.Abort != nil {
		go func() {
			select {
			case <-c.opts.Abort:
				cancelWork()
			case <-workCtx.Done():
			}
		}()
	}
	var wg sync.WaitGroup
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(workCtx) {
			}
		}()
	}
	logger.Info("Started workers", "count", c.opts.Workers)
	aborted := false
	select {
	case <-ctx.Done():
	case <-c.opts.Abort: // a nil channel never fires
		aborted = true
	}
	c.stopping.Store(true)
	grace := time.Duration(0)
	if !aborted && errors.Is(context.Cause(ctx), ErrShuttingDown) {
		grace = c.opts.ShutdownGrace
	}
	stopWork := time.AfterFunc(grace, cancelWork)
	defer stopWork.Stop()
	c.queue.ShutDown()
	wg.Wait()
	logger.Info("Stopped")
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	if c.stopping.Load() {
		return false
	}
	start := time.Now()
	retry, err := c.sync(ctx, key)
	if c.opts.Metrics != nil {
		c.opts.Metrics.observeReconcile(time.Since(start), err)
	}
	switch {
	case err != nil:
		klog.FromContext(ctx).Error(err, "Sync failed, will retry", "key", key)
		c.queue.AddRateLimited(key)
	case retry:
		c.queue.AddRateLimited(key)
	default:
		c.queue.Forget(key)
	}
	return true
}

// sync handles one key; retry asks for a back-off retry without an error.
func (c *Controller) sync(ctx context.Context, key string) (retry bool, err error) {
	if strings.HasPrefix(key, configKeyPrefix) {
		return false, c.syncConfig(ctx)
	}
	return c.syncService(ctx, key)
}

func (c *Controller) syncConfig(ctx context.Context) error {
	cm, err := c.cms.ConfigMaps(c.opts.ConfigMapNamespace).Get(c.opts.ConfigMapName)
	if apierrors.IsNotFound(err) {
		cm = nil
	} else if err != nil {
		return err
	}
	c.mu.Lock()
	if cm != nil && cm.ResourceVersion == c.config.version {
		c.mu.Unlock()
		return nil
	}
	c.reportConfig(ctx, cm, c.config.update(cm))
	c.mu.Unlock()
	// Every Service is decided again: waiting ones may get an address, and
	// those whose address left the pool get a Warning.
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, s := range svcs {
		c.queue.Add(decide.Key(s))
	}
	return nil
}

// reportConfig logs and records the errors of a new ConfigMap version; mu is held.
func (c *Controller) reportConfig(ctx context.Context, cm *corev1.ConfigMap, errs []*allocator.KeyError) {
	logger := klog.FromContext(ctx)
	if c.opts.Metrics != nil {
		c.opts.Metrics.configErrors.Set(float64(len(errs)))
	}
	if cm == nil {
		return
	}
	logger.Info("ConfigMap loaded", "configMap", klog.KObj(cm), "resourceVersion", cm.ResourceVersion, "invalidKeys", len(errs))
	if cm.ResourceVersion == c.configEvent {
		return
	}
	c.configEvent = cm.ResourceVersion
	// A malformed key is reported once, not again with every change of
	// another key; fixed and broken again, it is reported again.
	now := make(map[string]bool, len(errs))
	for _, ke := range errs {
		msg := ke.Error()
		now[msg] = true
		if c.configReported[msg] {
			continue
		}
		logger.Error(ke, "Invalid ConfigMap key", "configMap", klog.KObj(cm), "key", ke.Key, "value", ke.Value)
		c.recorder.Event(cm, corev1.EventTypeWarning, decide.ReasonInvalidConfig, msg)
	}
	c.configReported = now
}

func (c *Controller) syncService(ctx context.Context, key string) (bool, error) {
	logger := klog.FromContext(ctx).WithValues("service", key)
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return false, nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		_, held := c.ledger.Usage().Holding(key)
		c.ledger.Forget(key)
		delete(c.waiting, key)
		c.seen.Forget(key)
		c.mu.Unlock()
		if held {
			logger.V(2).Info("Service deleted, address released")
			c.wakeWaiting()
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}

	c.mu.Lock()
	pending, uncertain := c.ledger.Uncertain(key)
	c.mu.Unlock()
	if uncertain {
		// Our last write of it may have landed or not: the cache cannot
		// tell (it may just lag), the API server can.
		live, settled, err := c.settleUncertain(ctx, key, pending)
		if settled || err != nil {
			return apierrors.IsConflict(err), ignoreConflict(err)
		}
		svc = live
	}

	c.mu.Lock()
	if !uncertain && c.ledger.Stale(svc) {
		c.mu.Unlock()
		return false, nil // the cache will show our write and queue it again
	}
	_, heldBefore := c.ledger.Usage().Holding(key)
	var d decide.Decision
	if uncertain {
		d = c.ledger.DecideLive(c.config.cfg, svc, c.opts.Decide)
	} else {
		d = c.ledger.Decide(c.config.cfg, svc, c.opts.Decide)
	}
	_, heldAfter := c.ledger.Usage().Holding(key)
	// A Service in conflict waits for the address to free up, whether it
	// holds nothing (Fail) or carries the contested address (Hold).
	if d.Action == decide.Fail || (d.Action == decide.Hold && d.Err != nil) {
		c.waiting[key] = true
	} else {
		delete(c.waiting, key)
	}
	c.mu.Unlock()
	if heldBefore && !heldAfter {
		c.wakeWaiting()
	}

	switch d.Action {
	case decide.Write, decide.Release:
		if d.Service == nil {
			break
		}
		updated, err := c.write(ctx, svc, d.Service)
		if err != nil {
			c.mu.Lock()
			if refused(err) {
				c.ledger.WriteFailed(d)
			} else {
				c.ledger.WriteUncertain(d)
			}
			c.mu.Unlock()
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if apierrors.IsConflict(err) {
				logger.V(2).Info("Service changed while we wrote it; retrying")
				return true, nil
			}
			return false, fmt.Errorf("update Service %s: %w", key, err)
		}
		c.mu.Lock()
		c.ledger.Written(d, updated.ResourceVersion)
		c.mu.Unlock()
		if d.Action == decide.Write {
			logger.Info("Address assigned", "addresses", decide.JoinAddrs(d.Holding.Addrs))
		} else {
			if len(d.Holding.Addrs) > 0 {
				logger.Info("Address released", "addresses", decide.JoinAddrs(d.Holding.Addrs))
			} else {
				logger.V(2).Info("Finalizer removed", "finalizer", decide.FinalizerLoadBalancerCleanup)
			}
			c.wakeWaiting()
		}
		c.written(d, updated)
	case decide.Fail:
		c.record(svc, key, d.Events, false)
		if c.opts.Metrics != nil {
			c.opts.Metrics.failures.WithLabelValues(failureReason(d.Err)).Inc()
		}
		logger.V(1).Info("No address", "reason", d.Err)
		return true, nil
	default:
		c.record(svc, key, d.Events, false)
		if d.Err != nil && c.opts.Metrics != nil {
			c.opts.Metrics.failures.WithLabelValues(failureReason(d.Err)).Inc()
		}
		return d.Err != nil, nil // a contested address: retried with back-off too
	}
	return false, nil
}

// settleUncertain reads a Service whose last write (pending) got no answer.
// When the write has landed, its Events are recorded and live is returned
// to be decided on. When the Service is still at the version the write was
// made against, the write may still land: rather than decide anew, which
// could pick other addresses, the same write is sent again (settled is
// then true); whichever of the two lands, the Service gets the same
// addresses. Otherwise the Service has moved on without it, and the write
// can no longer land: live is returned to be decided on afresh. The
// reservation stands until one of these has happened.
func (c *Controller) settleUncertain(ctx context.Context, key string, pending decide.Decision) (live *corev1.Service, settled bool, err error) {
	logger := klog.FromContext(ctx).WithValues("service", key)
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	live, err = c.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		c.ledger.Forget(key)
		delete(c.waiting, key)
		c.seen.Forget(key)
		c.mu.Unlock()
		c.wakeWaiting()
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read Service %s after a write of unknown outcome: %w", key, err)
	}
	live.ManagedFields = nil
	switch {
	case pending.Landed(live):
		logger.Info("A write whose answer was lost had landed", "addresses", decide.JoinAddrs(pending.Holding.Addrs))
		c.written(pending, live)
		return live, false, nil
	case live.ResourceVersion == pending.Service.ResourceVersion:
		updated, err := c.write(ctx, live, pending.Service)
		if apierrors.IsNotFound(err) {
			return c.settleUncertain(ctx, key, pending) // gone: forget it
		}
		if refused(err) && !apierrors.IsConflict(err) {
			// The same write, to the same version, refused outright: so
			// would the first one be. It cannot land; decide afresh.
			c.mu.Lock()
			c.ledger.WriteFailed(pending)
			c.mu.Unlock()
			logger.Info("A write whose answer was lost was refused when sent again", "err", err)
			return live, false, nil
		}
		if err != nil {
			// Still unknown (a conflict means the Service moved on, maybe
			// by our first write): the next read will tell.
			return nil, false, fmt.Errorf("write Service %s again after a write of unknown outcome: %w", key, err)
		}
		c.mu.Lock()
		c.ledger.Written(pending, updated.ResourceVersion)
		c.mu.Unlock()
		logger.Info("A write whose answer was lost was sent again", "addresses", decide.JoinAddrs(pending.Holding.Addrs))
		c.written(pending, updated)
		if pending.Action == decide.Release {
			c.wakeWaiting()
		}
		return updated, true, nil
	}
	return live, false, nil
}

// written tells what a write of d did, once it has landed: metrics and Events.
func (c *Controller) written(d decide.Decision, updated *corev1.Service) {
	if c.opts.Metrics != nil && d.Action == decide.Write && d.Allocated {
		c.opts.Metrics.allocations.Inc()
	}
	c.record(updated, decide.Key(updated), d.Events, true)
}

// ignoreConflict returns err unless it is a conflict, which is retried
// without being logged as an error.
func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// write patches the Service from (as read) into to, only if it is still at
// from's resourceVersion (optimistic concurrency).
func (c *Controller) write(ctx context.Context, from, to *corev1.Service) (*corev1.Service, error) {
	patch, err := servicePatch(from, to)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error()) // never sent: refused, not uncertain
	}
	return c.client.CoreV1().Services(from.Namespace).Patch(ctx, from.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
}

// record emits events, skipping one identical to the last emitted for the
// same object unless force is set.
func (c *Controller) record(obj *corev1.Service, key string, evs []decide.Event, force bool) {
	c.mu.Lock()
	evs = c.seen.Fresh(key, evs, force)
	c.mu.Unlock()
	for _, e := range evs {
		c.recorder.Event(obj, e.Type, e.Reason, e.Message)
	}
}

// wakeWaiting re-queues every Service waiting for an address.
func (c *Controller) wakeWaiting() {
	c.mu.Lock()
	keys := make([]string, 0, len(c.waiting))
	for k := range c.waiting {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.queue.Add(k)
	}
}

// refused reports whether err says that the API server turned a write down
// before it could take effect. Other errors (time-outs, server errors, a
// dropped connection) leave its outcome unknown.
func refused(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsInvalid(err) ||
		apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsMethodNotSupported(err) ||
		apierrors.IsRequestEntityTooLargeError(err) || apierrors.IsNotAcceptable(err) || apierrors.IsUnsupportedMediaType(err)
}

func failureReason(err error) string {
	var ae *allocator.Error
	if errors.As(err, &ae) {
		return string(ae.Reason)
	}
	return string(allocator.ReasonInvalidRequest)
}
