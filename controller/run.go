package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

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

	// The discovery of the claims API takes no context (and may wait 32 s
	// for an API server that hangs): a stop does not wait for it.
	claimsStarted := make(chan error, 1)
	go func() { claimsStarted <- c.startClaims(ctx, c.factory) }()
	select {
	case err := <-claimsStarted:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return nil // asked to stop before we started: not a failure
	}
	c.factory.Start(ctx.Done())
	c.cmFactor.Start(ctx.Done())
	defer c.stopInformers(logger)
	logger.Info("Waiting for caches to sync")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil // asked to stop before we started: not a failure
		}
		return errors.New("caches did not sync")
	}

	cm, err := c.configMap()
	if err != nil {
		return err
	}
	if cm == nil {
		logger.Info("ConfigMap not found: no pools until it is created",
			"configMap", klog.KRef(c.opts.ConfigMapNamespace, c.opts.ConfigMapName))
	}
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list Services: %w", err)
	}
	holding, conflicts := c.engine.Start(ctx, cm, svcs) // queues every Service
	// Services that reached the cache after the list above were observed
	// by the old ledger: observe what the cache holds now.
	if now, err := c.services.List(labels.Everything()); err == nil {
		for _, s := range now {
			c.engine.Observe(s)
		}
	}
	logger.Info("Ledger rebuilt from the cluster", "services", len(svcs), "holding", holding, "conflicts", conflicts)
	c.ready.Store(true)
	defer c.ready.Store(false)
	go c.repairClaims(ctx)

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

// informerStopWait bounds how long Run waits for its informers to stop.
const informerStopWait = time.Second

// stopInformers waits, for up to informerStopWait, for the informers to stop
// (their context is done). client-go's reflector sleeps out the back-off of
// a failed watch-list without watching for the stop (up to 30 s when the API
// server is unreachable): a shutdown must not wait for that; the process
// exits, or the goroutine ends after its sleep.
func (c *Controller) stopInformers(logger klog.Logger) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.factory.Shutdown()
		c.cmFactor.Shutdown()
	}()
	t := time.NewTimer(informerStopWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		logger.Info("Informers still stopping (backing off a failed watch): not waiting for them", "waited", informerStopWait)
	}
}

// configMap returns the ConfigMap from the cache, nil when it does not exist.
func (c *Controller) configMap() (*corev1.ConfigMap, error) {
	cm, err := c.cms.ConfigMaps(c.opts.ConfigMapNamespace).Get(c.opts.ConfigMapName)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", c.opts.ConfigMapNamespace, c.opts.ConfigMapName, err)
	}
	return cm, nil
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
	res, err := c.sync(ctx, key)
	if c.opts.Metrics != nil {
		c.opts.Metrics.observeReconcile(time.Since(start), err)
	}
	switch {
	case err != nil:
		klog.FromContext(ctx).Error(err, "Sync failed, will retry", "key", key)
		c.queue.AddRateLimited(key)
	case res == engine.BackOff, res == engine.Wait:
		// A waiting Service is woken when an address frees up, and
		// retried with back-off as well (the compatibility contract).
		c.queue.AddRateLimited(key)
	default:
		c.queue.Forget(key)
	}
	return true
}

// sync handles one key and says what to do with it next.
func (c *Controller) sync(ctx context.Context, key queueKey) (engine.Result, error) {
	if key.config {
		return engine.Done, c.syncConfig(ctx)
	}
	return c.engine.SyncService(ctx, key.service)
}

// syncConfig loads a new version of the ConfigMap; the engine then wakes
// every Service.
func (c *Controller) syncConfig(ctx context.Context) error {
	cm, err := c.configMap()
	if err != nil {
		return err
	}
	c.engine.SetConfig(ctx, cm)
	return nil
}

// repairClaims repairs the address claims now and then every
// RepairInterval, until ctx is done.
func (c *Controller) repairClaims(ctx context.Context) {
	t := time.NewTicker(c.opts.RepairInterval)
	defer t.Stop()
	for {
		r := c.engine.Repair(ctx)
		if c.opts.Metrics != nil {
			c.opts.Metrics.claimConflicts.Set(float64(len(r.Foreign)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
