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
	// What the e2e relies on: dual-stack Services, two workers beside the
	// control plane for kube-vip's DaemonSet (one to lose, one to take
	// over), and no kindnetd (the node image brings its own pod network).
	if c.Networking.IPFamily != v1alpha4.DualStackFamily {
		t.Errorf("ipFamily %q, want %q", c.Networking.IPFamily, v1alpha4.DualStackFamily)
	}
	var roles []string
	for _, n := range c.Nodes {
		roles = append(roles, string(n.Role))
	}
	if got := strings.Join(roles, ","); got != "control-plane,worker,worker" {
		t.Errorf("node roles %s, want control-plane,worker,worker", got)
	}
	if !c.Networking.DisableDefaultCNI {
		t.Error("disableDefaultCNI is off: kind would apply kindnetd, which the node image has not")
	}
	patches := strings.Join(c.KubeadmConfigPatches, "\n")
	for _, want := range []string{"imageRepository: kvcp.local", "failCgroupV1: false", "audit-log-path"} {
		if !strings.Contains(patches, want) {
			t.Errorf("the kubeadm patches lack %q", want)
		}
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
