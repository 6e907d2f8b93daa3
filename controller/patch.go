package controller

import (
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
)

// servicePatch returns the JSON merge patch that turns from into to,
// carrying from's resourceVersion: the API server applies it only to that
// version (409 Conflict otherwise), as an Update would, but it touches only
// the fields this provider changes. An Update would send the whole object
// back, and against an API server newer than this client it would drop
// the Service fields the client does not know. (A merge patch replaces a
// list whole, finalizers say; the resourceVersion makes that safe.)
func servicePatch(from, to *corev1.Service) ([]byte, error) {
	a, err := json.Marshal(from)
	if err != nil {
		return nil, fmt.Errorf("encode Service %s/%s: %w", from.Namespace, from.Name, err)
	}
	b, err := json.Marshal(to)
	if err != nil {
		return nil, fmt.Errorf("encode Service %s/%s: %w", to.Namespace, to.Name, err)
	}
	p, err := jsonpatch.CreateMergePatch(a, b)
	if err != nil {
		return nil, fmt.Errorf("patch for Service %s/%s: %w", from.Namespace, from.Name, err)
	}
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return nil, fmt.Errorf("patch for Service %s/%s: %w", from.Namespace, from.Name, err)
	}
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["metadata"] = meta
	}
	meta["resourceVersion"] = from.ResourceVersion
	return json.Marshal(m)
}
