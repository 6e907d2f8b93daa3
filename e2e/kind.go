package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindcmd "sigs.k8s.io/kind/pkg/cmd"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

const (
	// KindCluster is the name of the kind cluster the suite creates.
	KindCluster = "kvcp-e2e"
	// KindImage is the controller's image, built by `make image` and
	// loaded into the nodes.
	KindImage = "kube-vip-cloud-provider:e2e"
	// echoImage serves HTTP behind every Service the suite reaches.
	echoImage = "registry.k8s.io/e2e-test-images/agnhost:2.53"
)

// Kind is a kind cluster with the controller installed from the manifest
// and kube-vip as a DaemonSet in ARP services mode (kind/kube-vip.yaml).
type Kind struct {
	provider   *cluster.Provider
	root, dir  string
	kubeconfig string
	cfg        *rest.Config
	client     kubernetes.Interface
	v4, v6     string
	keep       bool
	created    bool
}

// Missing names what `make e2e` needs and does not find, with how to get
// it; "" when Docker's client is installed and its engine runs. kind
// itself is a Go library of the suite, kubectl is not needed.
func Missing() string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "docker is not installed: install Docker Engine (https://docs.docker.com/engine/install/), then start it"
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return "the Docker engine is not running (`docker info` fails: " + strings.TrimSpace(lastLine(string(out))) +
			"): start it (e.g. `sudo systemctl start docker`) or point DOCKER_HOST at one"
	}
	return ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// NewKind creates the cluster from kind/cluster.yaml, builds and loads the
// image, and installs the manifest, the ConfigMap and kube-vip. keep
// leaves the cluster in place at the end.
func NewKind(ctx context.Context, keep bool) (*Kind, error) {
	if m := Missing(); m != "" {
		return nil, errors.New(m)
	}
	k := &Kind{keep: keep}
	var err error
	if k.root, err = repoRoot(); err != nil {
		return nil, err
	}
	if k.dir, err = os.MkdirTemp("", "kvcp-kind-"); err != nil {
		return nil, err
	}
	k.kubeconfig = filepath.Join(k.dir, "kubeconfig")
	k.provider = cluster.NewProvider(cluster.ProviderWithLogger(kindcmd.NewLogger()), cluster.ProviderWithDocker())
	fail := func(err error) (*Kind, error) { _ = k.Close(); return nil, err }

	existing, err := k.provider.List()
	if err != nil {
		return fail(fmt.Errorf("list kind clusters: %w", err))
	}
	if slices.Contains(existing, KindCluster) {
		fmt.Printf("e2e: deleting the kind cluster %s left by an earlier run\n", KindCluster)
		if err := k.provider.Delete(KindCluster, ""); err != nil {
			return fail(err)
		}
	}
	fmt.Printf("e2e: creating kind cluster %s from kind/cluster.yaml\n", KindCluster)
	k.created = true
	if err := k.provider.Create(KindCluster,
		cluster.CreateWithConfigFile(filepath.Join(k.root, "kind", "cluster.yaml")),
		cluster.CreateWithKubeconfigPath(k.kubeconfig),
		cluster.CreateWithWaitForReady(3*time.Minute),
		cluster.CreateWithDisplayUsage(false), cluster.CreateWithDisplaySalutation(false)); err != nil {
		return fail(fmt.Errorf("create the kind cluster: %w", err))
	}
	if k.cfg, err = clientcmd.BuildConfigFromFlags("", k.kubeconfig); err != nil {
		return fail(err)
	}
	k.client = kubernetes.NewForConfigOrDie(k.cfg)
	for _, step := range []func(context.Context) error{k.buildAndLoad, k.pools, k.install} {
		if err := step(ctx); err != nil {
			return fail(err)
		}
	}
	return k, nil
}

// buildAndLoad runs `make image` and loads the image into every node.
func (k *Kind) buildAndLoad(ctx context.Context) error {
	fmt.Printf("e2e: make image IMAGE=%s\n", KindImage)
	cmd := exec.CommandContext(ctx, "make", "-C", k.root, "image", "IMAGE="+KindImage)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("make image: %w", err)
	}
	tar := filepath.Join(k.dir, "image.tar")
	if out, err := exec.CommandContext(ctx, "docker", "save", "-o", tar, KindImage).CombinedOutput(); err != nil {
		return fmt.Errorf("docker save %s: %v: %s", KindImage, err, out)
	}
	nodes, err := k.provider.ListInternalNodes(KindCluster)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		fmt.Printf("e2e: loading %s into node %s\n", KindImage, n)
		f, err := os.Open(tar)
		if err != nil {
			return err
		}
		err = nodeutils.LoadImageArchive(n, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("load %s into %s: %w", KindImage, n, err)
		}
	}
	return nil
}

// pools carves the last /26 (and /120) of the kind Docker network's
// subnets: addresses the host reaches on-link, away from the low end
// Docker hands to containers.
func (k *Kind) pools(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "docker", "network", "inspect", "kind", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker network inspect kind: %v: %s", err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			continue
		}
		if p.Addr().Is4() && p.Bits() <= 26 {
			k.v4 = netip.PrefixFrom(lastAddr(p), 26).Masked().String()
		} else if p.Addr().Is6() && p.Bits() <= 120 {
			k.v6 = netip.PrefixFrom(lastAddr(p), 120).Masked().String()
		}
	}
	if k.v4 == "" {
		return fmt.Errorf("no IPv4 subnet of /26 or wider on the kind network: %q", out)
	}
	fmt.Printf("e2e: pools from the kind network: %s %s\n", k.v4, k.v6)
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

// install applies the ConfigMap (the example's, with the kind pool), the
// controller's manifest (running the loaded image) and kube-vip, and waits
// until both run.
func (k *Kind) install(ctx context.Context) error {
	cm, err := manifest.Objects(manifest.ExampleConfigMap)
	if err != nil {
		return err
	}
	for _, u := range cm {
		if err := unstructured.SetNestedStringMap(u.Object, map[string]string{"cidr-global": k.v4}, "data"); err != nil {
			return err
		}
	}
	ctrl, err := manifest.Objects(manifest.CloudController)
	if err != nil {
		return err
	}
	for _, u := range ctrl {
		if u.GetKind() != "StatefulSet" {
			continue
		}
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		for _, c := range cs {
			c.(map[string]any)["image"] = KindImage
			c.(map[string]any)["imagePullPolicy"] = "Never"
		}
		if err := unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", "containers"); err != nil {
			return err
		}
	}
	raw, err := os.ReadFile(filepath.Join(k.root, "kind", "kube-vip.yaml"))
	if err != nil {
		return err
	}
	kv, err := manifest.Objects(raw)
	if err != nil {
		return fmt.Errorf("kind/kube-vip.yaml: %w", err)
	}
	fmt.Println("e2e: applying the ConfigMap, manifest/kube-vip-cloud-controller.yaml and kind/kube-vip.yaml")
	objs := append(append(cm, ctrl...), kv...)
	if err := manifest.Apply(ctx, k.cfg, objs, metav1.PatchOptions{FieldManager: "e2e"}); err != nil {
		return err
	}
	fmt.Println("e2e: waiting for the controller and kube-vip to run")
	return wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		sts, err := k.client.AppsV1().StatefulSets("kube-system").Get(ctx, "kube-vip-cloud-provider", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ds, err := k.client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-vip-ds", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return sts.Status.ReadyReplicas >= 1 && ds.Status.DesiredNumberScheduled > 0 &&
			ds.Status.NumberReady == ds.Status.DesiredNumberScheduled, nil
	})
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
// would (`kubectl delete pod kube-vip-cloud-provider-0`), and wait for the
// StatefulSet's new one to be ready.
func (k *Kind) RestartController(ctx context.Context) error {
	pods := k.client.CoreV1().Pods("kube-system")
	old, err := pods.Get(ctx, "kube-vip-cloud-provider-0", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if err := pods.Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, old.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && p.UID == old.UID) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
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
					Name: "echo", Image: echoImage,
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

// nodeAddrs lists the addresses on eth0 of every node.
func (k *Kind) nodeAddrs() (map[string][]netip.Addr, error) {
	ns, err := k.provider.ListInternalNodes(KindCluster)
	if err != nil {
		return nil, err
	}
	out := map[string][]netip.Addr{}
	for _, n := range ns {
		lines, err := kindexec.OutputLines(n.Command("ip", "-o", "addr", "show", "dev", "eth0"))
		if err != nil {
			return nil, fmt.Errorf("ip addr on %s: %w", n, err)
		}
		for _, l := range lines {
			f := strings.Fields(l)
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "inet" || f[i] == "inet6" {
					if p, err := netip.ParsePrefix(f[i+1]); err == nil {
						out[n.String()] = append(out[n.String()], p.Addr())
					}
				}
			}
		}
	}
	return out, nil
}

// Advertised implements Advertiser: addr is on a node's eth0.
func (k *Kind) Advertised(_ context.Context, addr netip.Addr) (bool, error) {
	all, err := k.nodeAddrs()
	if err != nil {
		return false, err
	}
	for _, as := range all {
		if slices.Contains(as, addr) {
			return true, nil
		}
	}
	return false, nil
}

// WaitAdvertised implements Advertiser: kube-vip wrote the address into
// status.loadBalancer.ingress, put it on one node's eth0, and it answers
// HTTP from the host (the echo Deployment behind the Service).
func (k *Kind) WaitAdvertised(ctx context.Context, svc *corev1.Service, addr netip.Addr) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var why string
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := k.client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		if !slices.ContainsFunc(s.Status.LoadBalancer.Ingress, func(in corev1.LoadBalancerIngress) bool { return in.IP == addr.String() }) {
			why = fmt.Sprintf("status.loadBalancer.ingress is %+v", s.Status.LoadBalancer.Ingress)
			return false, nil
		}
		if on, err := k.Advertised(ctx, addr); !on {
			why = fmt.Sprintf("in the status but on no node's eth0 (%v)", err)
			return false, nil
		}
		if err := get(ctx, addr, s.Spec.Ports[0].Port); err != nil {
			why = err.Error()
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s not advertised within 3m: %s", addr, why)
	}
	return nil
}

// get asks the echo server behind addr:port for its hostname.
func get(ctx context.Context, addr netip.Addr, port int32) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/hostname", netip.AddrPortFrom(addr, uint16(port)))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s from the host: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK || len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("GET %s: %s %q", url, resp.Status, body)
	}
	return nil
}

// WaitWithdrawn implements Advertiser: the address is on no node.
func (k *Kind) WaitWithdrawn(ctx context.Context, addr netip.Addr) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		on, err := k.Advertised(ctx, addr)
		return err == nil && !on, nil
	})
	if err != nil {
		return fmt.Errorf("%s still on a node a minute after the Service was deleted", addr)
	}
	return nil
}

// Diagnostics implements Cluster: the controller's and kube-vip's logs.
func (k *Kind) Diagnostics() string {
	if k.client == nil {
		return ""
	}
	var b strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := k.client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	lines := int64(200)
	for _, p := range pods.Items {
		if !strings.HasPrefix(p.Name, "kube-vip") {
			continue
		}
		raw, err := k.client.CoreV1().Pods("kube-system").GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx)
		fmt.Fprintf(&b, "---- logs of pod kube-system/%s (%v):\n%s\n", p.Name, err, raw)
	}
	return b.String()
}

// Close implements Cluster: deletes the cluster unless asked to keep it.
func (k *Kind) Close() error {
	defer os.RemoveAll(k.dir)
	if !k.created {
		return nil
	}
	if k.keep {
		// As `kind create cluster` does: into $KUBECONFIG or ~/.kube/config.
		if err := k.provider.ExportKubeConfig(KindCluster, "", false); err != nil {
			return fmt.Errorf("kept the kind cluster %s, but could not export its kubeconfig: %w", KindCluster, err)
		}
		fmt.Printf("e2e: kept the kind cluster %s (--keep): kubectl --context kind-%s ...; delete it with kind delete cluster --name %s\n",
			KindCluster, KindCluster, KindCluster)
		return nil
	}
	fmt.Printf("e2e: deleting the kind cluster %s\n", KindCluster)
	k.created = false
	return k.provider.Delete(KindCluster, k.kubeconfig)
}

var (
	_ Cluster    = (*Kind)(nil)
	_ Cluster    = (*Local)(nil)
	_ Advertiser = (*Kind)(nil)
	_ Advertiser = (*kubeVIP)(nil)
	_ Auditor    = (*Local)(nil)
)
