// Command benchcontroller measures the controller against a real API server
// (the envtest kube-apiserver and etcd): for each N it creates N LoadBalancer
// Services and prints the time until all have an address, Services per
// second, the p50/p99 of creation-to-address latency, and the controller's
// peak memory; next to it, the API server's own limit measured in the same
// run: N plain Service creates and N plain updates with no controller. Each
// N runs with address claims on and off (-claims), side by side.
// `make bench-controller` runs it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

func main() {
	sizes := flag.String("n", "1000,5000", "Comma-separated numbers of Services.")
	concurrency := flag.Int("concurrency", 32, "Parallel client requests when creating and updating.")
	workers := flag.Int("workers", 8, "The controller's --workers (default: the binary's default).")
	qps := flag.Int("qps", 1000, "The controller's --kube-api-qps (burst is twice that; default: the binary's default).")
	claims := flag.String("claims", "on,off", "Comma-separated --address-claims settings to run for each N, side by side.")
	flag.Parse()
	if err := run(*sizes, *concurrency, *workers, *qps, *claims); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(sizes string, concurrency, workers, qps int, claimModes string) error {
	var modes []bool
	for _, m := range strings.Split(claimModes, ",") {
		switch strings.TrimSpace(m) {
		case "on":
			modes = append(modes, true)
		case "off":
			modes = append(modes, false)
		default:
			return fmt.Errorf("-claims: %q is neither on nor off", m)
		}
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run `make bench-controller`, which installs the control plane")
	}
	tmp, err := os.MkdirTemp("", "benchcontroller")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "kube-vip-cloud-provider")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/kube-vip-cloud-provider").CombinedOutput(); err != nil {
		return fmt.Errorf("build the controller: %v\n%s", err, out)
	}

	env := &envtest.Environment{}
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/12")
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start envtest: %w", err)
	}
	defer func() { _ = env.Stop() }()
	user, err := env.AddUser(envtest.User{Name: "bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, _ := user.KubeConfig()
	kubeconfig := filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 100000, 100000
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	if _, err := client.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubevip", Namespace: "kube-system"},
		Data:       map[string]string{"cidr-global": "10.128.0.0/14"},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	var rows []string
	for i, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-n: %q is not a positive number", f)
		}
		ns := fmt.Sprintf("bench-%d-%d", i, n)
		fmt.Fprintf(os.Stderr, "N=%d: baseline (plain updates, no controller)...\n", n)
		limit, err := baseline(ctx, client, ns+"-updates", n, concurrency)
		if err != nil {
			return err
		}
		both := limit.create + limit.update
		for _, claims := range modes {
			ctrl := controllerProcess{bin: bin, kubeconfig: kubeconfig, workers: workers, qps: qps, claims: claims}
			mode := onOff(claims)
			fmt.Fprintf(os.Stderr, "N=%d, claims %s: controller assigning %d existing Services...\n", n, mode, n)
			assign, err := assignExisting(ctx, client, ctrl, ns+"-assign-"+mode, n, concurrency)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "N=%d, claims %s: Services created while the controller runs...\n", n, mode)
			live, err := liveCreate(ctx, client, ctrl, ns+"-live-"+mode, n, concurrency)
			if err != nil {
				return err
			}
			rows = append(rows, fmt.Sprintf("| %d | %s | %.2fs (%.0f/s) | %.2fs (%.0f/s) | %.2fx | %.2fs + %.2fs = %.2fs | %.2fs (%.0f/s) | %.2fx | %.2fx | %s | %s | %.1f MiB |",
				n, mode, limit.update.Seconds(), float64(n)/limit.update.Seconds(), assign.total.Seconds(), float64(n)/assign.total.Seconds(),
				assign.total.Seconds()/limit.update.Seconds(),
				limit.create.Seconds(), limit.update.Seconds(), both.Seconds(), live.total.Seconds(), float64(n)/live.total.Seconds(),
				live.total.Seconds()/limit.create.Seconds(), live.total.Seconds()/both.Seconds(),
				live.p50.Round(time.Millisecond), live.p99.Round(time.Millisecond), float64(max(assign.peakRSS, live.peakRSS))/(1<<20)))
		}
	}
	fmt.Printf("controller: --workers=%d --kube-api-qps=%d --kube-api-burst=%d; clients: %d in parallel\n\n", workers, qps, 2*qps, concurrency)
	fmt.Println("| N | address claims | API server limit: N plain updates | controller: N existing Services assigned | ratio | API server limit: N plain creates + N plain updates | N created while running: all assigned after | ratio to the creates | ratio to creates + updates | p50 create-to-address | p99 | controller peak RSS |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	return nil
}

func mkService(ns, name string, lb bool) *corev1.Service {
	no := false
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if lb {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.AllocateLoadBalancerNodePorts = &no
	}
	return s
}

// parallel runs fn(i) for i in [0,n), at most c at a time (testenv.Each),
// and returns the first error.
func parallel(n, c int, fn func(i int) error) error {
	var mu sync.Mutex
	var first error
	testenv.Each(n, c, func(i int) {
		if err := fn(i); err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
	})
	return first
}

func createNamespace(ctx context.Context, client kubernetes.Interface, ns string) error {
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	return err
}

// baseline times n creates of LoadBalancer Services with no controller
// running, then n plain Updates of them (an annotation each, like the
// controller's one write per Service).
func baseline(ctx context.Context, client kubernetes.Interface, ns string, n, c int) (baselines, error) {
	if err := createNamespace(ctx, client, ns); err != nil {
		return baselines{}, err
	}
	svcs := make([]*corev1.Service, n)
	start := time.Now()
	if err := parallel(n, c, func(i int) error {
		s, err := client.CoreV1().Services(ns).Create(ctx, mkService(ns, fmt.Sprintf("s%05d", i), true), metav1.CreateOptions{})
		svcs[i] = s
		return err
	}); err != nil {
		return baselines{}, fmt.Errorf("baseline create: %w", err)
	}
	created := time.Since(start)
	start = time.Now()
	err := parallel(n, c, func(i int) error {
		s := svcs[i].DeepCopy()
		s.Annotations = map[string]string{decide.AnnotationLoadBalancerIPs: "192.0.2.1"}
		_, err := client.CoreV1().Services(ns).Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
	took := time.Since(start)
	if err != nil {
		return baselines{}, err
	}
	return baselines{create: created, update: took}, deleteAll(ctx, client, ns, c)
}

// baselines are the API server's own limits: n plain creates of
// LoadBalancer Services, and n plain updates of them, with no controller.
type baselines struct{ create, update time.Duration }

type result struct {
	total, p50, p99 time.Duration
	peakRSS         int64
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "0"
	}
	defer l.Close()
	return l.Addr().String()
}

// controllerProcess starts the controller binary.
type controllerProcess struct {
	bin, kubeconfig string
	workers, qps    int
	claims          bool
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// start runs the controller and waits until it is ready.
func (p controllerProcess) start() (*exec.Cmd, error) {
	health := freeAddr()
	cmd := exec.Command(p.bin, "--kubeconfig="+p.kubeconfig, "--leader-elect=false",
		"--workers="+strconv.Itoa(p.workers), "--kube-api-qps="+strconv.Itoa(p.qps), "--kube-api-burst="+strconv.Itoa(2*p.qps),
		"--metrics-bind-address=0", "--health-probe-bind-address="+health, "--address-claims="+strconv.FormatBool(p.claims))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get("http://" + health + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, nil
			}
		}
		if time.Now().After(deadline) {
			stop(cmd)
			return nil, errors.New("the controller did not become ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_, _ = cmd.Process.Wait()
}

// createLB creates n LoadBalancer Services, calling before(name) first.
func createLB(ctx context.Context, client kubernetes.Interface, ns string, n, c int, before func(string)) error {
	if err := createNamespace(ctx, client, ns); err != nil {
		return err
	}
	return parallel(n, c, func(i int) error {
		name := fmt.Sprintf("s%05d", i)
		if before != nil {
			before(name)
		}
		_, err := client.CoreV1().Services(ns).Create(ctx, mkService(ns, name, true), metav1.CreateOptions{})
		return err
	})
}

// deleteAll deletes the Services of ns, and the controller's address
// claims, so that the next round starts from a cluster of the same size.
func deleteAll(ctx context.Context, client kubernetes.Interface, ns string, c int) error {
	list, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if err := parallel(len(list.Items), c, func(i int) error {
		return client.CoreV1().Services(ns).Delete(ctx, list.Items[i].Name, metav1.DeleteOptions{})
	}); err != nil {
		return err
	}
	return client.NetworkingV1().IPAddresses().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{
		LabelSelector: networkingv1.LabelManagedBy + "=" + engine.ManagedBy})
}

// watchAssigned records when each Service of ns first carries an address
// and closes done once n have.
func watchAssigned(ctx context.Context, client kubernetes.Interface, ns string, n int) (map[string]time.Time, *sync.Mutex, chan struct{}, func(), error) {
	w, err := client.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var mu sync.Mutex
	at := make(map[string]time.Time, n)
	done := make(chan struct{})
	go func() {
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Service)
			if !ok || s.Annotations[decide.AnnotationLoadBalancerIPs] == "" {
				continue
			}
			now := time.Now()
			mu.Lock()
			if _, seen := at[s.Name]; !seen {
				at[s.Name] = now
				if len(at) == n {
					close(done)
				}
			}
			mu.Unlock()
		}
	}()
	return at, &mu, done, w.Stop, nil
}

func waitDone(done chan struct{}, n int) error {
	select {
	case <-done:
		return nil
	case <-time.After(15 * time.Minute):
		return fmt.Errorf("not all %d Services got an address in 15 minutes", n)
	}
}

// assignExisting creates n Services with no controller running, then times
// a fresh controller giving every one an address.
func assignExisting(ctx context.Context, client kubernetes.Interface, p controllerProcess, ns string, n, c int) (result, error) {
	if err := createLB(ctx, client, ns, n, c, nil); err != nil {
		return result{}, err
	}
	at, mu, done, stopWatch, err := watchAssigned(ctx, client, ns, n)
	if err != nil {
		return result{}, err
	}
	defer stopWatch()
	start := time.Now()
	cmd, err := p.start()
	if err != nil {
		return result{}, err
	}
	defer stop(cmd)
	if err := waitDone(done, n); err != nil {
		return result{}, err
	}
	var r result
	mu.Lock()
	for _, t := range at {
		if d := t.Sub(start); d > r.total {
			r.total = d
		}
	}
	mu.Unlock()
	r.peakRSS = peakRSS(cmd.Process.Pid)
	return r, deleteAll(ctx, client, ns, c)
}

// liveCreate creates n Services while a controller runs and measures the
// latency from each creation to its address.
func liveCreate(ctx context.Context, client kubernetes.Interface, p controllerProcess, ns string, n, c int) (result, error) {
	cmd, err := p.start()
	if err != nil {
		return result{}, err
	}
	defer stop(cmd)
	at, mu, done, stopWatch, err := watchAssigned(ctx, client, ns+"", n)
	if err != nil {
		return result{}, err
	}
	defer stopWatch()
	created := make(map[string]time.Time, n)
	start := time.Now()
	if err := createLB(ctx, client, ns, n, c, func(name string) {
		mu.Lock()
		created[name] = time.Now()
		mu.Unlock()
	}); err != nil {
		return result{}, err
	}
	if err := waitDone(done, n); err != nil {
		return result{}, err
	}
	var r result
	mu.Lock()
	lat := make([]time.Duration, 0, n)
	for name, t := range at {
		lat = append(lat, t.Sub(created[name]))
		if d := t.Sub(start); d > r.total {
			r.total = d
		}
	}
	mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	r.peakRSS = peakRSS(cmd.Process.Pid)
	return r, deleteAll(ctx, client, ns, c)
}

// peakRSS reads the process's high-water mark of resident memory (VmHWM).
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
