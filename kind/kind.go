// Package kind holds the kind cluster configuration of `make e2e`
// (cluster.yaml) and decodes it the way kind does, so that a typo in it
// fails a unit test instead of a cluster creation on a machine with Docker.
package kind

import (
	"bytes"
	_ "embed"
	"fmt"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// ClusterYAML is cluster.yaml, the configuration `make e2e` creates its
// cluster from.
//
//go:embed cluster.yaml
var ClusterYAML []byte

// Decode decodes a kind cluster configuration strictly into kind's
// v1alpha4 types, as `kind create cluster --config` does: an unknown field
// is an error, and so is any apiVersion or kind but kind.x-k8s.io/v1alpha4
// Cluster.
func Decode(raw []byte) (*v1alpha4.Cluster, error) {
	var c v1alpha4.Cluster
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode kind cluster config: %w", err)
	}
	if c.APIVersion != "kind.x-k8s.io/v1alpha4" || c.Kind != "Cluster" {
		return nil, fmt.Errorf("decode kind cluster config: apiVersion %q kind %q, want kind.x-k8s.io/v1alpha4 Cluster", c.APIVersion, c.Kind)
	}
	return &c, nil
}
