package sim

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// write is one entry of the API server's write log: the Service as it was
// stored at that resourceVersion, or nil for a deletion.
type write struct {
	key string
	svc *corev1.Service
}

// cluster is the simulated API server: Services with resourceVersions and
// a log of every write, from which informer caches are replayed.
type cluster struct {
	services map[string]*corev1.Service
	log      []write
	rv       int64
	// created orders Services by creation for Rebuild's tie-breaks.
	created int64
	// claims are the address claims (IPAddress objects), by address.
	claims   map[netip.Addr]engine.Claim
	claimSeq int
	// uidSeq numbers the UIDs of the Services created.
	uidSeq int
}

func newCluster() *cluster {
	return &cluster{services: map[string]*corev1.Service{}, claims: map[netip.Addr]engine.Claim{}}
}

func (c *cluster) store(key string, svc *corev1.Service) {
	c.rv++
	if svc != nil {
		svc = svc.DeepCopy()
		svc.ResourceVersion = strconv.FormatInt(c.rv, 10)
		if svc.UID == "" {
			// Created now (an update keeps the stored UID): one created
			// again after a delete is another object, as in the API
			// server.
			c.uidSeq++
			svc.UID = types.UID("uid-" + strconv.Itoa(c.uidSeq))
		}
		c.services[key] = svc
	} else {
		delete(c.services, key)
	}
	c.log = append(c.log, write{key: key, svc: svc})
}

// update stores svc if its resourceVersion is current; false is a conflict.
func (c *cluster) update(svc *corev1.Service) (*corev1.Service, bool) {
	key := svc.Namespace + "/" + svc.Name
	cur, ok := c.services[key]
	if !ok || cur.ResourceVersion != svc.ResourceVersion {
		return nil, false
	}
	out := svc.DeepCopy()
	out.Status = cur.Status // writes to the main resource never change status
	c.store(key, out)
	return c.services[key], true
}

// keys returns the stored Services' keys, sorted.
func (c *cluster) keys() []string {
	ks := make([]string, 0, len(c.services))
	for k := range c.services {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// list returns the Services stored, by key.
func (c *cluster) list() []*corev1.Service {
	out := make([]*corev1.Service, 0, len(c.services))
	for _, k := range c.keys() {
		out = append(out, c.services[k])
	}
	return out
}

// configMaps are the simulated API server's ConfigMaps: the kubevip one
// and the controller's own of last good values; and, for the trace, the
// key each message the controller loaded from the kubevip one names.
type configMaps struct {
	// data is the kubevip ConfigMap's data, version its resourceVersion;
	// deleted is set from a step that deleted it to one that sets it.
	data    map[string]string
	version int
	deleted bool
	// lastGood is the controller's own ConfigMap of last good values.
	lastGood map[string]string
	// keyOf names the key of each malformed-key message and notice the
	// controller loaded.
	keyOf map[string]string
}

// set stores the kubevip ConfigMap's data (creating it again after a
// delete), as a new version.
func (c *configMaps) set(data map[string]string) {
	c.data = data
	c.version++
	c.deleted = false
}

// remove deletes the kubevip ConfigMap.
func (c *configMaps) remove() { c.data, c.deleted = nil, true }

// kubevip is the kubevip ConfigMap as the simulated API server stores it
// (nil once a step deleted it).
func (c *configMaps) kubevip() *corev1.ConfigMap {
	if c.deleted {
		return nil
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubevip", ResourceVersion: strconv.Itoa(c.version)},
		Data:       c.data,
	}
}

// lastGoodStore is the controller's own ConfigMap of the last good values
// of the kubevip ConfigMap's keys, in the simulated API server: it
// survives a restart and a hand-over.
type lastGoodStore struct{ cm *configMaps }

// Load implements engine.LastGood.
func (l lastGoodStore) Load(context.Context) (map[string]string, error) {
	return maps.Clone(l.cm.lastGood), nil
}

// Save implements engine.LastGood.
func (l lastGoodStore) Save(_ context.Context, values map[string]string) error {
	l.cm.lastGood = maps.Clone(values)
	return nil
}

// cache is one replica's informer cache: the cluster as of some position
// of its write log.
type cache struct {
	services map[string]*corev1.Service
	pos      int
}

func newCache() *cache { return &cache{services: map[string]*corev1.Service{}} }

// sync makes the cache a fresh LIST of the cluster (after a restart).
func (ca *cache) sync(c *cluster) {
	ca.services = make(map[string]*corev1.Service, len(c.services))
	for k, s := range c.services {
		ca.services[k] = s
	}
	ca.pos = len(c.log)
}

// advance applies the next log entry and returns its key.
func (ca *cache) advance(c *cluster) (string, bool) {
	if ca.pos >= len(c.log) {
		return "", false
	}
	w := c.log[ca.pos]
	ca.pos++
	if w.svc == nil {
		delete(ca.services, w.key)
	} else {
		ca.services[w.key] = w.svc
	}
	return w.key, true
}

func (ca *cache) list() []*corev1.Service {
	out := make([]*corev1.Service, 0, len(ca.services))
	for _, k := range sortedKeys(ca.services) {
		out = append(out, ca.services[k])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
