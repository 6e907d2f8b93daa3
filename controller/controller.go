package controller

import (
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// queueKey is a key of the work queue: the ConfigMap, or one Service.
type queueKey struct {
	// config is set for the ConfigMap.
	config bool
	// service is the Service's "namespace/name".
	service string
}

// configKey is the queue key of the ConfigMap.
var configKey = queueKey{config: true}

// Controller assigns addresses to LoadBalancer Services: informers and a
// work queue around the shared sync engine.
type Controller struct {
	client   kubernetes.Interface
	opts     Options
	factory  informers.SharedInformerFactory
	cmFactor informers.SharedInformerFactory
	services corelisters.ServiceLister
	cms      corelisters.ConfigMapLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[queueKey]
	events   record.EventBroadcaster
	recorder record.EventRecorder
	engine   *engine.Engine

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
	}
	c.cmFactor = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(opts.ConfigMapNamespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", opts.ConfigMapName).String()
		}))
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[queueKey](opts.RetryBaseDelay, opts.RetryMaxDelay),
		workqueue.TypedRateLimitingQueueConfig[queueKey]{Name: "services"})

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
	onCM := func(interface{}) { c.queue.Add(configKey) }
	_, _ = cmInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onCM,
		UpdateFunc: func(_, obj interface{}) { onCM(obj) },
		DeleteFunc: onCM,
	})
	c.synced = []cache.InformerSynced{svcInformer.Informer().HasSynced, cmInformer.Informer().HasSynced}

	c.events = record.NewBroadcaster()
	c.recorder = c.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Component})
	var observer engine.Observer
	if opts.Metrics != nil {
		observer = opts.Metrics
	}
	c.engine = engine.New(clusterAdapter{c}, c.recorder, observer,
		func(key string) { c.queue.Add(queueKey{service: key}) },
		engine.Options{Decide: opts.Decide, ClaimGrace: opts.ClaimGrace, ConfigMap: opts.ConfigMapNamespace + "/" + opts.ConfigMapName,
			LastGood: lastGoodStore{client: client, namespace: opts.ConfigMapNamespace, name: opts.ConfigMapName + LastGoodSuffix}})
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
		// Reserve what it is served on now, not when its turn comes.
		c.engine.Observe(svc)
	}
	c.queue.Add(queueKey{service: key})
}

// Ready reports whether the controller has synced its caches and rebuilt
// its ledger.
func (c *Controller) Ready() bool { return c.ready.Load() }
