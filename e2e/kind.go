package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

// KindCluster is the name of the kind cluster the suite creates.
const KindCluster = "kvcp-e2e"

// Kind is a kind cluster with the controller installed from the manifest
// and kube-vip as a DaemonSet in ARP services mode.
type Kind struct {
	dir, kubeconfig, image string
	client                 kubernetes.Interface
	v4, v6                 string
	keep                   bool
}

// Missing names the tools `make e2e` needs that are not here, with how to
// get them; it returns "" when all are present and Docker's engine runs.
func Missing() string {
	var out []string
	if !lookPath("docker") {
		out = append(out, "docker is not installed: install Docker Engine (https://docs.docker.com/engine/install/)")
	} else if err := exec.Command("docker", "info").Run(); err != nil {
		out = append(out, "no Docker engine is running (`docker info` fails): start one (e.g. `sudo systemctl start docker`)")
	}
	if !lookPath("kind") {
		out = append(out, "kind is not installed: `go install sigs.k8s.io/kind@v0.31.0` (puts it in $(go env GOPATH)/bin)")
	}
	if !lookPath("kubectl") {
		out = append(out, "kubectl is not installed: https://kubernetes.io/docs/tasks/tools/")
	}
	return strings.Join(out, "\n")
}

func (k *Kind) sh(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// NewKind creates the cluster, builds and loads the image, and installs
// the controller, the ConfigMap and kube-vip. keep leaves the cluster.
func NewKind(ctx context.Context, keep bool) (*Kind, error) {
	if m := Missing(); m != "" {
		return nil, errors.New(m)
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	k := &Kind{image: "kube-vip-cloud-provider:e2e", keep: keep}
	if k.dir, err = os.MkdirTemp("", "kvcp-kind-"); err != nil {
		return nil, err
	}
	k.kubeconfig = filepath.Join(k.dir, "kubeconfig")
	fail := func(err error) (*Kind, error) { _ = k.Close(); return nil, err }
	if _, err := k.sh(ctx, nil, "kind", "create", "cluster", "--name", KindCluster, "--config", filepath.Join(root, "kind", "cluster.yaml"),
		"--kubeconfig", k.kubeconfig, "--wait", "120s"); err != nil {
		return fail(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", k.kubeconfig)
	if err != nil {
		return fail(err)
	}
	k.client = kubernetes.NewForConfigOrDie(cfg)
	if _, err := k.sh(ctx, nil, "make", "-C", root, "image", "IMAGE="+k.image); err != nil {
		return fail(err)
	}
	if _, err := k.sh(ctx, nil, "kind", "load", "docker-image", k.image, "--name", KindCluster); err != nil {
		return fail(err)
	}
	if err := k.pools(ctx); err != nil {
		return fail(err)
	}
	if err := setConfigMap(ctx, k.client, map[string]string{"cidr-global": k.v4}); err != nil {
		return fail(err)
	}
	m := strings.ReplaceAll(string(manifest.CloudController), "ghcr.io/kvcp-dev/kube-vip-cloud-provider:v0.1.0", k.image)
	m = strings.ReplaceAll(m, "imagePullPolicy: IfNotPresent", "imagePullPolicy: Never")
	if _, err := k.sh(ctx, []byte(m), "kubectl", "apply", "-f", "-"); err != nil {
		return fail(err)
	}
	if _, err := k.sh(ctx, nil, "kubectl", "apply", "-f", filepath.Join(root, "kind", "kube-vip.yaml")); err != nil {
		return fail(err)
	}
	for _, w := range [][]string{
		{"kubectl", "-n", "kube-system", "rollout", "status", "statefulset/kube-vip-cloud-provider", "--timeout=180s"},
		{"kubectl", "-n", "kube-system", "rollout", "status", "daemonset/kube-vip-ds", "--timeout=180s"},
	} {
		if _, err := k.sh(ctx, nil, w...); err != nil {
			return fail(err)
		}
	}
	return k, nil
}

// pools carves the last /27 (and /120) of the kind Docker network's
// subnets: addresses the host can reach, outside Docker's allocations.
func (k *Kind) pools(ctx context.Context) error {
	out, err := k.sh(ctx, nil, "docker", "network", "inspect", "kind", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}")
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(out) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			continue
		}
		last := lastAddr(p)
		if p.Addr().Is4() && p.Bits() <= 27 {
			k.v4 = netip.PrefixFrom(last, 27).Masked().String()
		} else if p.Addr().Is6() && p.Bits() <= 120 {
			k.v6 = netip.PrefixFrom(last, 120).Masked().String()
		}
	}
	if k.v4 == "" {
		return fmt.Errorf("no IPv4 subnet of /27 or wider on the kind network: %q", out)
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Name implements Cluster.
func (k *Kind) Name() string { return "kind" }

// Client implements Cluster.
func (k *Kind) Client() kubernetes.Interface { return k.client }

// Pools implements Cluster.
func (k *Kind) Pools() (string, string) { return k.v4, k.v6 }

// SetConfig implements Cluster.
func (k *Kind) SetConfig(ctx context.Context, data map[string]string) error {
	return setConfigMap(ctx, k.client, data)
}

// RestartController implements Cluster: delete the pod, as an operator
// would, and wait for the StatefulSet to bring it back.
func (k *Kind) RestartController(ctx context.Context) error {
	if _, err := k.sh(ctx, nil, "kubectl", "-n", "kube-system", "delete", "pod", "kube-vip-cloud-provider-0", "--wait=true"); err != nil {
		return err
	}
	_, err := k.sh(ctx, nil, "kubectl", "-n", "kube-system", "wait", "pod/kube-vip-cloud-provider-0", "--for=condition=Ready", "--timeout=120s")
	return err
}

// Prepare implements Cluster: a small echo Deployment behind the Service.
func (k *Kind) Prepare(ctx context.Context, svc *corev1.Service) error {
	one := int32(1)
	labels := map[string]string{"app": svc.Name}
	svc.Spec.Selector = labels
	for i := range svc.Spec.Ports {
		svc.Spec.Ports[i].TargetPort = intstr.FromInt32(8080)
	}
	_, err := k.client.AppsV1().Deployments(svc.Namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "echo", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
					Args:  []string{"netexec", "--http-port=8080"},
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	return err
}

// Advertiser implements Cluster.
func (k *Kind) Advertiser() (Advertiser, string) { return k, "" }

// WaitAdvertised implements Advertiser: kube-vip wrote
// status.loadBalancer.ingress and the address answers HTTP from the host.
func (k *Kind) WaitAdvertised(ctx context.Context, svc *corev1.Service, addr netip.Addr) error {
	deadline := time.Now().Add(3 * time.Minute)
	for ; ; time.Sleep(time.Second) {
		s, err := k.client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
		if err == nil {
			for _, in := range s.Status.LoadBalancer.Ingress {
				if in.IP == addr.String() {
					return k.reach(addr, svc.Spec.Ports[0].Port, deadline)
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("status.loadBalancer.ingress never showed %s", addr)
		}
	}
}

func (k *Kind) reach(addr netip.Addr, port int32, deadline time.Time) error {
	c := http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://%s/hostname", netip.AddrPortFrom(addr, uint16(port)))
	var err error
	for ; time.Now().Before(deadline); time.Sleep(time.Second) {
		var resp *http.Response
		if resp, err = c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	return fmt.Errorf("%s not reachable from the host: %w", url, err)
}

// WaitWithdrawn implements Advertiser: the address stops answering.
func (k *Kind) WaitWithdrawn(ctx context.Context, addr netip.Addr) error {
	c := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(time.Minute)
	for ; time.Now().Before(deadline); time.Sleep(time.Second) {
		resp, err := c.Get(fmt.Sprintf("http://%s/hostname", netip.AddrPortFrom(addr, 80)))
		if err != nil {
			return nil
		}
		resp.Body.Close()
	}
	return fmt.Errorf("%s still answers a minute after the Service was deleted", addr)
}

// Close implements Cluster: deletes the cluster unless asked to keep it.
func (k *Kind) Close() error {
	var err error
	if !k.keep {
		_, err = k.sh(context.Background(), nil, "kind", "delete", "cluster", "--name", KindCluster)
	} else {
		fmt.Fprintf(os.Stderr, "kept kind cluster %s; kubeconfig: %s\n", KindCluster, k.kubeconfig)
		return nil
	}
	os.RemoveAll(k.dir)
	return err
}
