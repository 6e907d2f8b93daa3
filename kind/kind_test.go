package kind_test

import (
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/kvcp-dev/kube-vip-cloud-provider/kind"
)

func TestClusterConfigDecodesStrictly(t *testing.T) {
	c, err := kind.Decode(kind.ClusterYAML)
	if err != nil {
		t.Fatal(err)
	}
	// What the e2e relies on: dual-stack Services, and a worker beside the
	// control plane for kube-vip's DaemonSet and the echo Deployment.
	if c.Networking.IPFamily != v1alpha4.DualStackFamily {
		t.Errorf("ipFamily %q, want %q", c.Networking.IPFamily, v1alpha4.DualStackFamily)
	}
	var roles []string
	for _, n := range c.Nodes {
		roles = append(roles, string(n.Role))
	}
	if got := strings.Join(roles, ","); got != "control-plane,worker" {
		t.Errorf("node roles %s, want control-plane,worker", got)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, raw := range map[string]string{
		"an unknown field":   "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  ipFamilly: dual\n",
		"another apiVersion": "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n",
		"another kind":       "kind: Node\napiVersion: kind.x-k8s.io/v1alpha4\n",
		"a wrong type":       "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: control-plane\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := kind.Decode([]byte(raw)); err == nil {
				t.Errorf("decoded:\n%s", raw)
			}
		})
	}
}
