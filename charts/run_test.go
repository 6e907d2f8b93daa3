package charts_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kvcp-dev/kube-vip-cloud-provider/charts"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

// install is one installation of the chart on the test's API server.
type install struct {
	rel    charts.Release
	values map[string]any
	class  string       // the loadBalancerClass of its Service ("" none)
	pool   netip.Prefix // where its Service's address must come from
	lease  string       // the Lease its leader holds
}

// TestChartRunsTheController applies two renders of the chart to a real
// API server by server-side apply (the default one in kube-system, and one
// for a loadBalancerClass in its own namespace with every flag the chart
// can pass), runs the controller binary once for each with the rendered
// arguments and the chart's ServiceAccount token, and waits for each to
// assign its Service an address from its own pool.
func TestChartRunsTheController(t *testing.T) {
	cfg, _ := testenv.Start(t)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := t.Context()
	bin := buildController(t)

	installs := []install{{
		rel:    charts.Release{Name: "kvcp", Namespace: "kube-system"},
		values: map[string]any{"configMap": map[string]any{"data": map[string]any{"cidr-global": "198.51.100.0/28"}}},
		pool:   netip.MustParsePrefix("198.51.100.0/28"),
		lease:  "kube-system/kube-vip-cloud-controller",
	}, {
		rel: charts.Release{Name: "kvcp-class", Namespace: "kvcp-system"},
		values: map[string]any{
			"configMap":         map[string]any{"name": "pools", "data": map[string]any{"cidr-global": "203.0.113.0/28"}},
			"loadBalancerClass": map[string]any{"enabled": true, "name": "example.com/lb"},
			"rbac":              map[string]any{"clusterRoleName": "kvcp-class", "clusterRoleBindingName": "kvcp-class"},
			"leaderElection":    map[string]any{"leaseName": "kvcp-class", "leaseDuration": "4s", "renewDeadline": "3s", "retryPeriod": "500ms"},
			"metrics":           map[string]any{"port": 9090, "service": map[string]any{"enabled": true}},
			"healthPort":        9091,
			"extraArgs":         []any{"--workers=2"},
		},
		class: "example.com/lb",
		pool:  netip.MustParsePrefix("203.0.113.0/28"),
		lease: "kvcp-system/kvcp-class",
	}}
	for _, ns := range []string{"kvcp-system", "team-a"} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range installs {
		objs, err := charts.Render(chartDir, in.rel, in.values)
		if err != nil {
			t.Fatal(err)
		}
		dry := metav1.PatchOptions{FieldManager: "helm", DryRun: []string{metav1.DryRunAll}}
		if err := manifest.Apply(ctx, cfg, objs, dry); err != nil {
			t.Fatalf("%s: dry run: %v", in.rel.Name, err)
		}
		if err := manifest.Apply(ctx, cfg, objs, metav1.PatchOptions{FieldManager: "helm"}); err != nil {
			t.Fatalf("%s: %v", in.rel.Name, err)
		}
		sa := find(t, objs, "ServiceAccount", "kube-vip-cloud-controller")
		kubeconfig := tokenKubeconfig(t, cfg, client, sa.GetNamespace(), sa.GetName())
		// The rendered arguments first, so the binary must accept every
		// flag the chart passes; then what only this test needs (later
		// flags win): its credentials and no listening ports.
		args := append(containerArgs(t, objs), "--kubeconfig="+kubeconfig, "--metrics-bind-address=0", "--health-probe-bind-address=0")
		runController(t, bin, in.rel.Name, args)
	}

	for i, in := range installs {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i), Namespace: "team-a"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
		}
		if in.class != "" {
			svc.Spec.LoadBalancerClass = &in.class
		}
		if _, err := client.CoreV1().Services("team-a").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, in := range installs {
		name := fmt.Sprintf("svc-%d", i)
		var got string
		// The bound only keeps a broken controller from hanging the test.
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			s, err := client.CoreV1().Services("team-a").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got = s.Annotations["kube-vip.io/loadbalancerIPs"]
			return got != "", nil
		})
		if err != nil {
			t.Fatalf("%s (release %s): no address: %v", name, in.rel.Name, err)
		}
		if a, err := netip.ParseAddr(got); err != nil || !in.pool.Contains(a) {
			t.Errorf("%s (release %s): address %q, want one of %s", name, in.rel.Name, got, in.pool)
		}
		ns, lease, _ := strings.Cut(in.lease, "/")
		l, err := client.CoordinationV1().Leases(ns).Get(ctx, lease, metav1.GetOptions{})
		if err != nil {
			t.Errorf("release %s: leader Lease: %v", in.rel.Name, err)
		} else if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			t.Errorf("release %s: nobody holds the Lease %s", in.rel.Name, in.lease)
		}
	}
}

// buildController builds the controller binary of this repository.
func buildController(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kube-vip-cloud-provider")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kube-vip-cloud-provider")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the controller: %v\n%s", err, out)
	}
	return bin
}

// tokenKubeconfig writes a kubeconfig that authenticates as the
// ServiceAccount ns/name only, with a token from the TokenRequest API.
func tokenKubeconfig(t *testing.T, cfg *rest.Config, client kubernetes.Interface, ns, name string) string {
	t.Helper()
	tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", ns, name, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: name}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), ns+"-"+name+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// runController starts the binary with args until the test ends; its log
// is shown when the test fails.
func runController(t *testing.T, bin, name string, args []string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			raw, _ := os.ReadFile(logPath)
			t.Logf("controller of release %s (%s):\n%s", name, strings.Join(args, " "), raw)
		}
	})
}
