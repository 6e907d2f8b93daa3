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
	"regexp"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindcmd "sigs.k8s.io/kind/pkg/cmd"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/kvcp-dev/kube-vip-cloud-provider/charts"
	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

const (
	// KindCluster is the name of the kind cluster the suite creates.
	KindCluster = "kvcp-e2e"
	// KindImage is the controller's image, built by `make image` and
	// loaded into the nodes.
	KindImage = "kube-vip-cloud-provider:e2e"
	// echoImage serves HTTP behind every Service the suite reaches
	// (hack/kindimage/echo, preloaded in the node image).
	echoImage = "kvcp.local/echo:dev"
	// DefaultNodeImage is the node image `make kind-image` builds.
	DefaultNodeImage = "kvcp.local/node:v1.37.2"
	// NodeImageEnv names another node image.
	NodeImageEnv = "E2E_KIND_IMAGE"
	// kindAuditLog is where the control plane's API server writes its
	// audit log (kind/cluster.yaml).
	kindAuditLog = "/var/log/kubernetes/kvcp-audit.log"
)

// NodeImage is the node image of the run: $E2E_KIND_IMAGE, else
// DefaultNodeImage.
func NodeImage() string {
	if v := os.Getenv(NodeImageEnv); v != "" {
		return v
	}
	return DefaultNodeImage
}

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
	// lost is the node LoseNode stopped, until it is back.
	lost string
}

// Missing names what `make e2e` needs and does not find, with how to get
// it; "" when Docker's client is installed, its engine runs and has the
// node image. kind itself is a Go library of the suite, kubectl is not
// needed on the host (the node image has its own).
func Missing() string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "docker is not installed: install Docker Engine (https://docs.docker.com/engine/install/), then start it"
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return "the Docker engine is not running (`docker info` fails: " + strings.TrimSpace(lastLine(string(out))) +
			"): start it (e.g. `sudo systemctl start docker`) or point DOCKER_HOST at one"
	}
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", NodeImage()).CombinedOutput(); err != nil {
		return fmt.Sprintf("the kind node image %s is not in Docker (%s): build it with `make kind-image KUBE_VIP_SOURCE=<a copy of kube-vip's source>` "+
			"(about an hour the first time, cached after; see docs/e2e.md)", NodeImage(), strings.TrimSpace(lastLine(string(out))))
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
	shim, err := installDockerShim(k.dir)
	if err != nil {
		return nil, fmt.Errorf("the e2e docker shim: %w", err)
	}
	if shim != "" {
		fmt.Println("e2e:", shim)
	}
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
	fmt.Printf("e2e: creating kind cluster %s from kind/cluster.yaml with the node image %s\n", KindCluster, NodeImage())
	k.created = true
	created := time.Now()
	if err := k.provider.Create(KindCluster,
		cluster.CreateWithConfigFile(filepath.Join(k.root, "kind", "cluster.yaml")),
		cluster.CreateWithNodeImage(NodeImage()),
		cluster.CreateWithKubeconfigPath(k.kubeconfig),
		cluster.CreateWithWaitForReady(3*time.Minute),
		cluster.CreateWithDisplayUsage(false), cluster.CreateWithDisplaySalutation(false)); err != nil {
		return fail(fmt.Errorf("create the kind cluster: %w", err))
	}
	if k.cfg, err = clientcmd.BuildConfigFromFlags("", k.kubeconfig); err != nil {
		return fail(err)
	}
	k.client = kubernetes.NewForConfigOrDie(k.cfg)
	fmt.Printf("e2e: kind cluster created, every node ready, after %v\n", time.Since(created).Round(time.Second))
	for _, step := range []func(context.Context) error{k.routes, k.coreDNS, k.buildAndLoad, k.pools, k.install} {
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

// pools carves the last /24 (and /120) of the kind Docker network's
// subnets: addresses the host reaches on-link, away from the low end
// Docker hands to containers. The specs' pools are slices of it at
// offsets up to about 150.
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
		if p.Addr().Is4() && p.Bits() <= 23 {
			k.v4 = netip.PrefixFrom(lastAddr(p), 24).Masked().String()
		} else if p.Addr().Is6() && p.Bits() <= 120 {
			k.v6 = netip.PrefixFrom(lastAddr(p), 120).Masked().String()
		}
	}
	if k.v4 == "" {
		return fmt.Errorf("no IPv4 subnet of /23 or wider on the kind network: %q", out)
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

// install applies the ConfigMap (the example's, with the kind pool),
// manifest/kube-vip-cloud-controller.yaml with `kubectl apply -f` (run on
// the control-plane node, with the node image's kubectl; only the image is
// changed, to the one just built and loaded) and kind/kube-vip.yaml, and
// waits until the controller and kube-vip run.
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
	raw, err := os.ReadFile(filepath.Join(k.root, "kind", "kube-vip.yaml"))
	if err != nil {
		return err
	}
	kv, err := manifest.Objects(raw)
	if err != nil {
		return fmt.Errorf("kind/kube-vip.yaml: %w", err)
	}
	fmt.Println("e2e: applying the ConfigMap and kind/kube-vip.yaml")
	if err := manifest.Apply(ctx, k.cfg, append(cm, kv...), metav1.PatchOptions{FieldManager: "e2e"}); err != nil {
		return err
	}
	ctrl, err := ControllerManifest(manifest.CloudController, KindImage)
	if err != nil {
		return err
	}
	fmt.Printf("e2e: kubectl apply -f manifest/kube-vip-cloud-controller.yaml (image %s)\n", KindImage)
	if err := k.kubectl(ctx, bytes.NewReader(ctrl), "apply", "-f", "-"); err != nil {
		return err
	}
	fmt.Println("e2e: waiting for the controller and kube-vip to run")
	return k.waitInstalled(ctx)
}

// ControllerManifest is the manifest with its image replaced by image,
// never pulled; an error if the manifest names no image to replace.
func ControllerManifest(raw []byte, image string) ([]byte, error) {
	re := regexp.MustCompile(`(?m)^(\s+image:) \S+\n(\s+imagePullPolicy:) \S+$`)
	if len(re.FindAll(raw, -1)) != 1 {
		return nil, errors.New("manifest/kube-vip-cloud-controller.yaml: want exactly one container image followed by its imagePullPolicy")
	}
	return re.ReplaceAll(raw, []byte("${1} "+image+"\n${2} Never")), nil
}

// kubectl runs the control-plane node's kubectl as the cluster's admin.
func (k *Kind) kubectl(ctx context.Context, stdin io.Reader, args ...string) error {
	cp, err := k.controlPlane()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := cp.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig=/etc/kubernetes/admin.conf"}, args...)...)
	cmd.SetStdout(&out).SetStderr(&out)
	if stdin != nil {
		cmd.SetStdin(stdin)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s on %s: %w: %s", strings.Join(args, " "), cp, err, out.String())
	}
	fmt.Print(out.String())
	return nil
}

func (k *Kind) controlPlane() (nodes.Node, error) {
	ns, err := k.provider.ListInternalNodes(KindCluster)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if r, err := n.Role(); err == nil && r == "control-plane" {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no control-plane node in kind cluster %s", KindCluster)
}

// waitInstalled waits until the controller's StatefulSet and kube-vip's
// DaemonSet are ready.
func (k *Kind) waitInstalled(ctx context.Context) error {
	var why string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		sts, err := k.client.AppsV1().StatefulSets("kube-system").Get(ctx, "kube-vip-cloud-provider", metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		ds, err := k.client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-vip-ds", metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		why = fmt.Sprintf("controller %d/%d ready, kube-vip %d/%d", sts.Status.ReadyReplicas, ptrOr(sts.Spec.Replicas, 1),
			ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
		return sts.Status.ReadyReplicas >= ptrOr(sts.Spec.Replicas, 1) && ds.Status.DesiredNumberScheduled > 0 &&
			ds.Status.NumberReady == ds.Status.DesiredNumberScheduled, nil
	})
	if err != nil {
		return fmt.Errorf("the controller and kube-vip are not ready after 3m: %s", why)
	}
	return nil
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// routes routes, on every node, the other nodes' podCIDRs via their
// addresses of the same family: the pod network between nodes, which
// kindnetd would set up (the node image's kvcp-cni writes each node's
// CNI configuration, but a node's credentials cannot read other nodes).
func (k *Kind) routes(ctx context.Context) error {
	list, err := k.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ns, err := k.provider.ListInternalNodes(KindCluster)
	if err != nil {
		return err
	}
	for _, n := range ns {
		for _, other := range list.Items {
			if other.Name == n.String() {
				continue
			}
			for _, c := range other.Spec.PodCIDRs {
				p, err := netip.ParsePrefix(c)
				if err != nil {
					return fmt.Errorf("node %s podCIDR %q: %w", other.Name, c, err)
				}
				for _, a := range other.Status.Addresses {
					ip, err := netip.ParseAddr(a.Address)
					if a.Type != corev1.NodeInternalIP || err != nil || ip.Is4() != p.Addr().Is4() {
						continue
					}
					if out, err := kindexec.CombinedOutputLines(n.CommandContext(ctx, "ip", "route", "replace", c, "via", a.Address)); err != nil {
						return fmt.Errorf("on %s: ip route replace %s via %s: %w: %v", n, c, a.Address, err, out)
					}
				}
			}
		}
	}
	return nil
}

// corefileForward is the forward block of kubeadm's Corefile.
var corefileForward = regexp.MustCompile(`(?m)^[ \t]*forward \. /etc/resolv\.conf[^\n]*\{[^}]*\}[ \t]*\n`)

// coreDNS drops the upstream from CoreDNS's Corefile and waits for
// CoreDNS to be ready. Its upstream would be the node's resolver, Docker's
// embedded DNS at 127.0.0.11, which answers inside the node's network
// namespace only: from the CoreDNS pod it is unreachable, and nothing
// outside the cluster is reachable here anyway. Cluster names resolve.
func (k *Kind) coreDNS(ctx context.Context) error {
	cms := k.client.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("CoreDNS's ConfigMap: %w", err)
	}
	core := cm.Data["Corefile"]
	if !corefileForward.MatchString(core) {
		return fmt.Errorf("CoreDNS's Corefile has no forward . /etc/resolv.conf block to drop:\n%s", core)
	}
	cm.Data["Corefile"] = corefileForward.ReplaceAllString(core, "")
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update CoreDNS's Corefile: %w", err)
	}
	// New pods read the new Corefile at once.
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kvcp.e2e/corefile":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := k.client.AppsV1().Deployments("kube-system").Patch(ctx, "coredns", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("restart CoreDNS: %w", err)
	}
	fmt.Println("e2e: CoreDNS: no upstream (the node's 127.0.0.11 is unreachable from pods); waiting for it to be ready")
	var why string
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := k.client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		why = fmt.Sprintf("%d updated, %d ready of %d", d.Status.UpdatedReplicas, d.Status.ReadyReplicas, ptrOr(d.Spec.Replicas, 1))
		return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == ptrOr(d.Spec.Replicas, 1) &&
			d.Status.ReadyReplicas == ptrOr(d.Spec.Replicas, 1) && d.Status.Replicas == d.Status.UpdatedReplicas, nil
	})
	if err != nil {
		return fmt.Errorf("CoreDNS not ready after 3m: %s", why)
	}
	return nil
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
					Name: "echo", Image: echoImage, ImagePullPolicy: corev1.PullNever,
					Args:  []string{"-listen=:8080"},
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
		if n.String() == k.lost {
			continue // stopped: it advertises nothing
		}
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

// Requests implements Auditor: the control plane's audit log
// (kind/cluster.yaml turns it on).
func (k *Kind) Requests() ([]AuditEvent, error) {
	cp, err := k.controlPlane()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := cp.Command("cat", kindAuditLog).SetStdout(&out).Run(); err != nil {
		return nil, fmt.Errorf("read %s on %s: %w", kindAuditLog, cp, err)
	}
	return parseAudit(&out)
}

// nodeIsWorker says whether a node runs kube-vip (kind/kube-vip.yaml).
func nodeIsWorker(n nodes.Node) bool {
	r, err := n.Role()
	return err == nil && r == "worker"
}

// NodesAdvertising implements NodeLoser.
func (k *Kind) NodesAdvertising(_ context.Context, addr netip.Addr) ([]string, error) {
	all, err := k.nodeAddrs()
	if err != nil {
		return nil, err
	}
	var out []string
	for n, as := range all {
		if slices.Contains(as, addr) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// LoseNode implements NodeLoser: kills (SIGKILL) the node container on
// whose eth0 addr is, as a power loss would.
func (k *Kind) LoseNode(ctx context.Context, addr netip.Addr) (string, error) {
	on, err := k.NodesAdvertising(ctx, addr)
	if err != nil {
		return "", err
	}
	if len(on) != 1 {
		return "", fmt.Errorf("%s is on nodes %v, want exactly one", addr, on)
	}
	k.lost = on[0]
	if out, err := exec.CommandContext(ctx, "docker", "kill", on[0]).CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker kill %s: %v: %s", on[0], err, out)
	}
	return on[0], nil
}

// RestoreNode implements NodeLoser: starts the lost node again and waits
// until it is Ready, kube-vip runs on it, and the controller runs.
func (k *Kind) RestoreNode(ctx context.Context) error {
	if k.lost == "" {
		return nil
	}
	name := k.lost
	// The Node may still read Ready from before the loss: wait for a
	// heartbeat of the restarted kubelet.
	started := metav1.Now()
	if out, err := exec.CommandContext(ctx, "docker", "start", name).CombinedOutput(); err != nil {
		return fmt.Errorf("docker start %s: %v: %s", name, err, out)
	}
	k.lost = ""
	var why string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := k.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				why = fmt.Sprintf("node %s Ready=%s (%s), last heartbeat %v", name, c.Status, c.Message, c.LastHeartbeatTime)
				return c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Before(&started), nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready 4m after docker start: %s", name, why)
	}
	if err := k.routes(ctx); err != nil {
		return err
	}
	return k.waitInstalled(ctx)
}

// SpreadEchoes implements NodeLoser: like Prepare, with one echo pod on
// each worker, so the Service keeps a backend when one worker is lost.
func (k *Kind) SpreadEchoes(ctx context.Context, svc *corev1.Service) error {
	ns, err := k.provider.ListInternalNodes(KindCluster)
	if err != nil {
		return err
	}
	workers := int32(0)
	for _, n := range ns {
		if nodeIsWorker(n) {
			workers++
		}
	}
	if err := k.Prepare(ctx, svc); err != nil {
		return err
	}
	patch := fmt.Sprintf(`{"spec":{"replicas":%d,"template":{"spec":{"topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"kubernetes.io/hostname",`+
		`"whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app":%q}},`+
		`"nodeAffinityPolicy":"Honor","nodeTaintsPolicy":"Honor"}]}}}}`, workers, svc.Name)
	_, err = k.client.AppsV1().Deployments(svc.Namespace).Patch(ctx, svc.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

// helmRelease is where the chart spec installs the chart.
var helmRelease = charts.Release{Name: "kvcp-helm", Namespace: "kvcp-helm"}

// InstallChart implements ChartInstaller: stops the manifest's controller
// (two controllers serving the same Services would contend), renders
// charts/kube-vip-cloud-provider as `helm template` does (the chart's own
// tests' way, charts.Render) with the image under test and pool as its
// ConfigMap's cidr-global, applies it in namespace kvcp-helm, and waits for
// its controller to be ready. The returned func uninstalls it and brings
// the manifest's controller back.
func (k *Kind) InstallChart(ctx context.Context, pool string) (func(context.Context) error, error) {
	repo, tag, _ := strings.Cut(KindImage, ":")
	objs, err := charts.Render(filepath.Join(k.root, "charts", "kube-vip-cloud-provider"), helmRelease, map[string]any{
		"image":     map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"configMap": map[string]any{"data": map[string]any{"cidr-global": pool}},
		"rbac": map[string]any{"clusterRoleName": "kvcp-helm", "clusterRoleBindingName": "kvcp-helm",
			"metricsReaderClusterRoleName": "kvcp-helm-metrics-reader"},
	})
	if err != nil {
		return nil, err
	}
	var sts string
	for _, o := range objs {
		if o.GetKind() == "StatefulSet" {
			sts = o.GetName()
		}
	}
	if sts == "" {
		return nil, errors.New("the chart renders no StatefulSet")
	}
	if err := k.scaleController(ctx, 0); err != nil {
		return nil, err
	}
	uninstall := func(ctx context.Context) error {
		if err := manifest.Delete(ctx, k.cfg, objs); err != nil {
			return err
		}
		if err := k.client.CoreV1().Namespaces().Delete(ctx, helmRelease.Namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return k.scaleController(ctx, 1)
	}
	if _, err := k.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: helmRelease.Namespace}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return uninstall, err
	}
	fmt.Printf("e2e: installing the chart as release %s in %s (StatefulSet %s)\n", helmRelease.Name, helmRelease.Namespace, sts)
	if err := manifest.Apply(ctx, k.cfg, objs, metav1.PatchOptions{FieldManager: "e2e-helm"}); err != nil {
		return uninstall, err
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		s, err := k.client.AppsV1().StatefulSets(helmRelease.Namespace).Get(ctx, sts, metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas >= 1, nil
	})
	if err != nil {
		return uninstall, fmt.Errorf("the chart's controller is not ready after 3m")
	}
	return uninstall, nil
}

// scaleController scales the manifest's StatefulSet and waits until it
// runs that many ready pods (and no other).
func (k *Kind) scaleController(ctx context.Context, n int32) error {
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
	if _, err := k.client.AppsV1().StatefulSets("kube-system").Patch(ctx, "kube-vip-cloud-provider", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scale the controller to %d: %w", n, err)
	}
	return wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		s, err := k.client.AppsV1().StatefulSets("kube-system").Get(ctx, "kube-vip-cloud-provider", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if n == 0 {
			_, err := k.client.CoreV1().Pods("kube-system").Get(ctx, "kube-vip-cloud-provider-0", metav1.GetOptions{})
			return s.Status.Replicas == 0 && apierrors.IsNotFound(err), nil
		}
		return s.Status.ReadyReplicas == n && s.Status.Replicas == n, nil
	})
}

var (
	_ ChartInstaller = (*Kind)(nil)
	_ Cluster        = (*Kind)(nil)
	_ Auditor        = (*Kind)(nil)
	_ NodeLoser      = (*Kind)(nil)
	_ Cluster        = (*Local)(nil)
	_ Advertiser     = (*Kind)(nil)
	_ Advertiser     = (*kubeVIP)(nil)
	_ Auditor        = (*Local)(nil)
)
