package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// clusterAdapter is the engine's view of the cluster: the informer cache
// for reads, the API server for live reads and writes.
type clusterAdapter struct{ c *Controller }

// Cached implements engine.Cluster.
func (a clusterAdapter) Cached(key string) (*corev1.Service, bool) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, false
	}
	svc, err := a.c.services.Services(ns).Get(name)
	return svc, err == nil
}

// List implements engine.Cluster.
func (a clusterAdapter) List() []*corev1.Service {
	svcs, _ := a.c.services.List(labels.Everything()) // a lister never fails
	return svcs
}

// Live implements engine.Cluster.
func (a clusterAdapter) Live(ctx context.Context, key string) (*corev1.Service, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return a.c.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
}

// Patch implements engine.Cluster: a JSON merge patch carrying from's
// resourceVersion (optimistic concurrency).
func (a clusterAdapter) Patch(ctx context.Context, from, to *corev1.Service) (*corev1.Service, error) {
	patch, err := servicePatch(from, to)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error()) // never sent: refused, not uncertain
	}
	return a.c.client.CoreV1().Services(from.Namespace).Patch(ctx, from.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
}
