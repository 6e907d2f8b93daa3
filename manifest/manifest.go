// Package manifest holds the install manifests, embedded so that tests and
// tools read exactly what an operator applies.
package manifest

import _ "embed"

// CloudController is kube-vip-cloud-controller.yaml: ServiceAccount, RBAC
// and the StatefulSet.
//
//go:embed kube-vip-cloud-controller.yaml
var CloudController []byte

// ExampleConfigMap is example-configmap.yaml: the kubevip ConfigMap.
//
//go:embed example-configmap.yaml
var ExampleConfigMap []byte
