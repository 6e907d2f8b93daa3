package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// LastGoodSuffix names the controller's own ConfigMap that keeps the last
// good value of every key of the kubevip ConfigMap across restarts:
// "<name><suffix>" ("kubevip-last-good"), in the kubevip ConfigMap's
// namespace.
const LastGoodSuffix = "-last-good"

// lastGoodStore is the engine's LastGood: a ConfigMap of the controller's
// own whose data are the last good values.
type lastGoodStore struct {
	client    kubernetes.Interface
	namespace string
	name      string
}

// Load implements engine.LastGood.
func (s lastGoodStore) Load(ctx context.Context) (map[string]string, error) {
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", s.namespace, s.name, err)
	}
	return cm.Data, nil
}

// Save implements engine.LastGood: the ConfigMap is created, or its data
// replaced.
func (s lastGoodStore) Save(ctx context.Context, values map[string]string) error {
	cms := s.client.CoreV1().ConfigMaps(s.namespace)
	cur, err := cms.Get(ctx, s.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": Component}},
			Data: values,
		}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
	case err == nil:
		cur = cur.DeepCopy()
		cur.Data = values
		_, err = cms.Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return fmt.Errorf("save the last good values in ConfigMap %s/%s: %w", s.namespace, s.name, err)
	}
	return nil
}
