package manifest

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Apply server-side applies objects to the cluster of cfg, as `kubectl
// apply --server-side` would; opts carries the field manager and, for a
// dry run, DryRun. The first object the API server refuses is an error
// naming its kind and name.
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured, opts metav1.PatchOptions) error {
	resource, err := resources(cfg)
	if err != nil {
		return err
	}
	for _, u := range objs {
		ri, err := resource(u)
		if err != nil {
			return err
		}
		raw, err := u.MarshalJSON()
		if err != nil {
			return err
		}
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, raw, opts); err != nil {
			return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// Delete deletes objects from the cluster of cfg, last first, as `kubectl
// delete -f` would; an object already gone is no error.
func Delete(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	resource, err := resources(cfg)
	if err != nil {
		return err
	}
	for i := len(objs) - 1; i >= 0; i-- {
		u := objs[i]
		ri, err := resource(u)
		if err != nil {
			return err
		}
		if err := ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// resources returns, for the cluster of cfg, the function that finds the
// dynamic client of an object's resource (namespaced when it has one).
func resources(cfg *rest.Config) (func(*unstructured.Unstructured) (dynamic.ResourceInterface, error), error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return func(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", gvk.Kind, u.GetName(), err)
		}
		if ns := u.GetNamespace(); ns != "" {
			return dyn.Resource(m.Resource).Namespace(ns), nil
		}
		return dyn.Resource(m.Resource), nil
	}, nil
}
