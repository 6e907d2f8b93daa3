package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

// TestExistingProviderArgs runs the binary with the existing provider's
// manifest args and a sample of tuned cloud-controller-manager flags against
// a real API server: it must start, honour the flags that map onto ours, log
// the ignored ones, and assign an address.
func TestExistingProviderArgs(t *testing.T) {
	client, kubeconfig := startEnv(t)
	bin := buildBinary(t)
	ctx := context.Background()

	// The kubeconfig names a server nobody listens on; --master names the
	// real one, so the binary reaches the API server only if --master wins.
	kc, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var master string
	for _, c := range kc.Clusters {
		master, c.Server = c.Server, "https://127.0.0.1:1"
	}
	wrong := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, wrong); err != nil {
		t.Fatal(err)
	}

	testenv.ConfigMap(t, client, map[string]string{"cidr-global": "192.0.2.0/28"})

	health := freePort(t)
	args := []string{
		// The existing provider's manifest, and what its binary sets itself.
		"--leader-elect-resource-name=kube-vip-cloud-controller",
		"--cloud-provider=kubevip", "--authentication-skip-lookup=true",
		// Tuned: honoured.
		"--kubeconfig=" + wrong, "--master=" + master,
		"--kube-api-content-type=application/vnd.kubernetes.protobuf", "--kube-api-qps=50", "--kube-api-burst=100",
		"--concurrent-service-syncs=2", "--profiling", "--leader-elect=true", "--leader-elect-resource-lock=leases",
		"--leader-elect-lease-duration=3s", "--leader-elect-renew-deadline=2s", "--leader-elect-retry-period=500ms",
		"--v=2",
		// Tuned: accepted and ignored.
		"--authentication-kubeconfig=" + wrong, "--authorization-kubeconfig=" + wrong,
		"--node-monitor-period=10s", "--secure-port=10258", "--bind-address=0.0.0.0", "--controllers=*,-route",
		"--use-service-account-credentials", "--configure-cloud-routes=false", "--min-resync-period=12h",
		"--logging-format=text",
		// Ignored, and a value this Kubernetes minor rejects: still no exit.
		"--feature-gates=GateOfAnOlderRelease=true",
		// Ours, so that parallel tests do not collide on :8080 and :8081.
		"--metrics-bind-address=" + freePort(t), "--health-probe-bind-address=" + health,
	}
	log, exited, cmd := runBinary(t, bin, "binary", args)

	no := false
	if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
			Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var addr string
	eventually(t, 60*time.Second, "an address for default/web", func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the binary exited: %v\n%s", err, log.String())
		default:
		}
		s, err := client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		addr = s.Annotations[decide.AnnotationLoadBalancerIPs]
		return addr != "", "none yet"
	})
	if !strings.HasPrefix(addr, "192.0.2.") {
		t.Fatalf("address %q is not from the pool", addr)
	}
	l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-vip-cloud-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("--leader-elect-resource-name: %v", err)
	}
	if l.Spec.HolderIdentity == nil {
		t.Fatal("the Lease has no holder")
	}

	// --profiling serves pprof on the health port.
	resp, err := http.Get("http://" + health + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/debug/pprof/: %s", resp.Status)
	}

	// Each ignored flag is logged once with its value; the honoured ones are not.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	exited <- errors.New("killed")
	out := log.String()
	for _, want := range []string{`flag="--node-monitor-period" value="10s"`, `flag="--secure-port" value="10258"`,
		`flag="--authentication-kubeconfig" value="` + wrong + `"`, `flag="--controllers" value="*,-route"`,
		`flag="--feature-gates" value="GateOfAnOlderRelease=true" invalidUpstream="unrecognized feature gate: GateOfAnOlderRelease"`} {
		if c := strings.Count(out, want); c != 1 {
			t.Errorf("%s logged %d times", want, c)
		}
	}
	for _, honoured := range []string{"--master", "--kube-api-qps", "--profiling", "--leader-elect-resource-name", "--concurrent-service-syncs"} {
		if strings.Contains(out, `flag="`+honoured+`"`) {
			t.Errorf("%s is honoured but logged as ignored", honoured)
		}
	}
}

// TestHelpExitsZero runs the binary with --help: the usage on stdout, the
// description first, exit status 0.
func TestHelpExitsZero(t *testing.T) {
	bin := buildBinary(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "--help")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("--help: %v\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), description+"\n") {
		t.Fatalf("--help does not start with the description:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "--authorization-kubeconfig") {
		t.Fatal("--help does not list the compatibility flags")
	}
}
