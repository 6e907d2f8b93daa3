package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// configState turns ConfigMap versions into the Config in force, keeping
// the last good value of every key that a new version breaks.
type configState struct {
	cfg *allocator.Config
	// version is the resourceVersion of the ConfigMap last parsed, ""
	// when there is none.
	version string
	// reported holds the messages of the malformed keys last reported, so
	// that a key that stays malformed is reported once, not again with
	// every change of another key; noticed, those of the notices (unknown
	// keys, CIDRs with host bits).
	reported map[string]bool
	noticed  map[string]bool
	// name is the ConfigMap's "namespace/name", from the last version seen.
	name string
	// saved holds the last good values as saved in the API server (see
	// LastGood); savedKnown is set once they were read or written.
	saved      map[string]string
	savedKnown bool
}

// LastGood keeps the last good value of every ConfigMap key in the API
// server (the controller's own ConfigMap), so that a restart loses none.
type LastGood interface {
	// Load returns the values saved; nil when none are.
	Load(ctx context.Context) (map[string]string, error)
	// Save replaces the values saved.
	Save(ctx context.Context, values map[string]string) error
}

// loadLastGood reads the last good values saved before a restart: the
// config they make up is the "last" that the ConfigMap is parsed against
// at start, so a key malformed now keeps its saved value. mu is not held.
func (e *Engine) loadLastGood(ctx context.Context) {
	if e.opts.LastGood == nil {
		return
	}
	values, err := e.opts.LastGood.Load(ctx)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Reading the last good ConfigMap values saved before the restart: a key malformed now has no earlier good value")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.config.saved, e.config.savedKnown = values, true
	if len(values) > 0 && e.config.cfg == nil {
		e.config.cfg, _ = allocator.Parse(values, nil) // what was saved parsed then
	}
}

// lastGoodToSave returns the values to save once cm (nil: deleted) is
// loaded, the value in force of every key, and whether they differ from
// what is saved: they are written only when a good value changes. mu is
// held.
func (e *Engine) lastGoodToSave(cm *corev1.ConfigMap) (map[string]string, bool) {
	if e.opts.LastGood == nil {
		return nil, false
	}
	var now map[string]string
	if cm != nil {
		now = e.config.cfg.Accepted()
	}
	if e.config.savedKnown && maps.Equal(now, e.config.saved) {
		return nil, false
	}
	return now, true
}

// saveLastGood writes values as the last good ones; mu is not held.
func (e *Engine) saveLastGood(ctx context.Context, values map[string]string) {
	if err := e.opts.LastGood.Save(ctx, values); err != nil {
		klog.FromContext(ctx).Error(err, "Saving the last good ConfigMap values: a restart would lose those of keys malformed by then")
		return
	}
	e.mu.Lock()
	e.config.saved, e.config.savedKnown = values, true
	e.mu.Unlock()
	klog.FromContext(ctx).V(1).Info("Saved the last good ConfigMap values", "keys", len(values))
}

// NoticeObserver is an Observer that is also told the notices of each
// ConfigMap version (see allocator.Notice), after ConfigLoaded: the
// simulator shows them as config rows. An Observer need not be one.
type NoticeObserver interface {
	ConfigNotices(notices []allocator.Notice)
}

// SetConfig loads a new version of the ConfigMap (nil when it does not
// exist) and reports its malformed keys. It returns false when cm is the
// version in force: nothing changed. On true, it wakes every Service the
// cache shows (oldest first) for a sync: waiting ones may get an address,
// and those whose address left the pool get a Warning.
func (e *Engine) SetConfig(ctx context.Context, cm *corev1.ConfigMap) bool {
	e.mu.Lock()
	if cm != nil && e.config.cfg != nil && cm.ResourceVersion == e.config.version {
		e.mu.Unlock()
		return false
	}
	e.loadConfig(ctx, cm)
	e.newGeneration() // waiting Services may get an address: oldest first
	save, changed := e.lastGoodToSave(cm)
	e.mu.Unlock()
	if changed {
		e.saveLastGood(ctx, save)
	}
	e.wakeAll(e.cluster.List())
	return true
}

// loadConfig parses cm and reports its malformed keys; mu is held. A
// deleted ConfigMap means no pools: addresses already assigned are kept;
// new Services wait for a pool.
func (e *Engine) loadConfig(ctx context.Context, cm *corev1.ConfigMap) {
	logger := klog.FromContext(ctx)
	if cm == nil {
		name := e.opts.ConfigMap
		if name == "" {
			name = e.config.name
		}
		why := "ConfigMap not found"
		if name != "" {
			why = fmt.Sprintf("ConfigMap %s not found", name)
		}
		if e.config.version != "" {
			logger.Info("ConfigMap deleted: no pools until it is created again; addresses already assigned are kept", "configMap", name)
		}
		e.config.cfg = allocator.Missing(why)
		e.config.version = ""
		// Created again, it is a new object: whatever it says is new.
		e.config.reported, e.config.noticed = nil, nil
		if e.observer != nil {
			e.observer.ConfigLoaded(nil)
		}
		if no, ok := e.observer.(NoticeObserver); ok {
			no.ConfigNotices(nil)
		}
		return
	}
	cfg, err := allocator.Parse(cm.Data, e.config.cfg)
	e.config.cfg, e.config.version = cfg, cm.ResourceVersion
	e.config.name = cm.Namespace + "/" + cm.Name
	errs := keyErrors(err)
	if e.observer != nil {
		e.observer.ConfigLoaded(errs)
	}
	logger.Info("ConfigMap loaded", "configMap", klog.KObj(cm), "resourceVersion", cm.ResourceVersion, "invalidKeys", len(errs))
	// A malformed key is reported once; fixed and broken again, it is
	// reported again.
	var fresh []*allocator.KeyError
	fresh, e.config.reported = once(e.config.reported, errs, (*allocator.KeyError).Error)
	for _, ke := range fresh {
		logger.Error(ke, "Invalid ConfigMap key", "configMap", klog.KObj(cm), "key", ke.Key, "value", ke.Value)
		e.recorder.Event(cm, corev1.EventTypeWarning, decide.ReasonInvalidConfig, ke.Error())
	}
	e.reportNotices(ctx, cm, cfg.Notices())
}

// once returns those of items whose message prev (the messages of the
// previous ConfigMap version) lacks, and the messages of all items, to
// pass as prev next time: what a version says is reported once, not again
// while later versions keep saying it.
func once[T any](prev map[string]bool, items []T, msg func(T) string) (fresh []T, now map[string]bool) {
	now = make(map[string]bool, len(items))
	for _, it := range items {
		m := msg(it)
		if !prev[m] {
			fresh = append(fresh, it)
		}
		now[m] = true
	}
	return fresh, now
}

// reportNotices records a Normal Event on cm, and logs a line, for each
// notice not reported for the previous version: an unknown key
// (UnknownConfigKey) or a CIDR with host bits (ConfigNotice). mu is held.
func (e *Engine) reportNotices(ctx context.Context, cm *corev1.ConfigMap, notices []allocator.Notice) {
	logger := klog.FromContext(ctx)
	if no, ok := e.observer.(NoticeObserver); ok {
		no.ConfigNotices(notices)
	}
	var fresh []allocator.Notice
	fresh, e.config.noticed = once(e.config.noticed, notices, allocator.Notice.String)
	for _, n := range fresh {
		reason := decide.ReasonConfigNotice
		switch n.Kind {
		case allocator.NoticeUnknownKey:
			reason = decide.ReasonUnknownConfigKey
			logger.Info("Unknown ConfigMap key, ignored: "+n.Key, "configMap", klog.KObj(cm), "key", n.Key, "didYouMean", n.Meant)
		case allocator.NoticeHostBits:
			logger.Info("ConfigMap CIDR with host bits set, read as its network: "+n.Key, "configMap", klog.KObj(cm), "key", n.Key, "entry", n.Entry, "readAs", n.Meant)
		}
		e.recorder.Event(cm, corev1.EventTypeNormal, reason, n.String())
	}
}

// keyErrors flattens the joined error Parse returns.
func keyErrors(err error) []*allocator.KeyError {
	if err == nil {
		return nil
	}
	var out []*allocator.KeyError
	var walk func(error)
	walk = func(e error) {
		if ke, ok := e.(*allocator.KeyError); ok {
			out = append(out, ke)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ke *allocator.KeyError
		if errors.As(e, &ke) {
			out = append(out, ke)
		}
	}
	walk(err)
	return out
}
