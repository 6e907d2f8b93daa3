// Command localcluster is what `make run` starts when no cluster is
// configured: the envtest control plane (a real kube-apiserver and etcd),
// a kubeconfig file for kubectl, the example ConfigMap, a few example
// Services, and the controller, printing each address as it is assigned.
// It runs until Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

func main() {
	kubeconfig := flag.String("kubeconfig-out", ".kubeconfig", "Where to write the kubeconfig of the local cluster.")
	configMap := flag.String("config", "manifest/example-configmap.yaml", "The ConfigMap to apply.")
	klog.InitFlags(nil)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *kubeconfig, *configMap); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfigPath, configMapPath string) error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run `make run`, which installs the control plane")
	}
	env := &envtest.Environment{}
	fmt.Println("Starting a local control plane (kube-apiserver and etcd)...")
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start the control plane: %w", err)
	}
	defer func() {
		fmt.Println("Stopping the control plane.")
		_ = env.Stop()
	}()
	user, err := env.AddUser(envtest.User{Name: "developer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add a user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.WriteFile(kubeconfigPath, kc, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	abs, _ := filepath.Abs(kubeconfigPath)
	fmt.Printf("\nThe cluster is up. In another terminal:\n\n    export KUBECONFIG=%s\n    kubectl get svc -A -w\n\n", abs)

	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := applyConfigMap(ctx, client, configMapPath); err != nil {
		return err
	}
	ctrl := controller.New(client, controller.Options{AddressClaims: true}) // as the binary by default
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()

	if err := createExamples(ctx, client); err != nil {
		return err
	}
	go printAssignments(ctx, client)
	fmt.Println("Controller running; press Ctrl-C to stop.")
	select {
	case <-ctx.Done():
	case err := <-done:
		if err != nil {
			return err
		}
	}
	return nil
}

func applyConfigMap(ctx context.Context, client kubernetes.Interface, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read the example ConfigMap: %w", err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	if cm.Namespace == "" {
		cm.Namespace = controller.DefaultConfigMapNamespace
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cm.Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, &cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ConfigMap: %w", err)
	}
	fmt.Printf("Applied ConfigMap %s/%s:\n", cm.Namespace, cm.Name)
	for k, v := range cm.Data {
		fmt.Printf("    %s: %s\n", k, v)
	}
	return nil
}

func createExamples(ctx context.Context, client kubernetes.Interface) error {
	no := false
	for _, ex := range []struct{ ns, name string }{{"default", "web"}, {"default", "api"}, {"development", "dev-web"}} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ex.ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: ex.name, Namespace: ex.ns},
			Spec: corev1.ServiceSpec{
				Type:                          corev1.ServiceTypeLoadBalancer,
				AllocateLoadBalancerNodePorts: &no,
				Selector:                      map[string]string{"app": ex.name},
				Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			},
		}
		if _, err := client.CoreV1().Services(ex.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create example Service %s/%s: %w", ex.ns, ex.name, err)
		}
		fmt.Printf("Created LoadBalancer Service %s/%s\n", ex.ns, ex.name)
	}
	return nil
}

// printAssignments prints every Service whose address changes.
func printAssignments(ctx context.Context, client kubernetes.Interface) {
	seen := map[string]string{}
	for ctx.Err() == nil {
		w, err := client.CoreV1().Services("").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			svc, ok := ev.Object.(*corev1.Service)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			key := svc.Namespace + "/" + svc.Name
			if a := svc.Annotations[decide.AnnotationLoadBalancerIPs]; a != "" && seen[key] != a {
				seen[key] = a
				fmt.Printf("%-30s %s\n", key, strings.ReplaceAll(a, ",", ", "))
			}
		}
	}
}
