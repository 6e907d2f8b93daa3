// Command localcluster is what `make run` starts: the envtest control plane
// (a real kube-apiserver and etcd), a kubeconfig for kubectl, the example
// ConfigMap and the controller binary (bin/kube-vip-cloud-provider) as a
// separate process without leader election. It prints what that cluster is
// and is not, the quick start's commands, and each Service's outcome as the
// controller's Events tell it, until Ctrl-C (then it exits 0).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	opts := defaultOptions()
	flag.StringVar(&opts.dir, "dir", opts.dir, "The run directory: kubeconfig and controller.log are written there.")
	flag.StringVar(&opts.configMap, "config", opts.configMap, "The ConfigMap manifest to apply.")
	flag.StringVar(&opts.binDir, "bin", opts.binDir, "The directory holding kube-vip-cloud-provider (make run builds it).")
	flag.BoolVar(&opts.noController, "no-controller", opts.noController, "Start the cluster without the controller, to rehearse a migration (default: $NO_CONTROLLER set and not 0 or false).")
	flag.StringVar(&opts.metricsAddr, "metrics-bind-address", opts.metricsAddr, "The controller's /metrics address.")
	flag.StringVar(&opts.healthAddr, "health-probe-bind-address", opts.healthAddr, "The controller's health probes' address.")
	flag.Parse()
	restore := foreground()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, opts, os.Stdout)
	stop()
	restore()
	if err != nil {
		fmt.Fprintln(os.Stderr, "make run:", err)
		os.Exit(1)
	}
}

// run starts the cluster, prints its banner and the Services' outcomes
// until ctx ends, and stops it.
func run(ctx context.Context, opts options, out *os.File) error {
	c, err := start(ctx, opts, out)
	if err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(out, "\nStopping.")
	return c.stop()
}
