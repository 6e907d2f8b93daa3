// Command kube-vip-cloud-provider gives every Service of type LoadBalancer an
// address from the pools of the kubevip ConfigMap. See the README.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"k8s.io/klog/v2"
)

// programName is the binary's name in --help and in the User-Agent.
const programName = "kube-vip-cloud-provider"

func main() {
	opts, fs, err := parseFlags(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\nRun %s --help for the flags.\n", programName, err, programName)
		os.Exit(2)
	}
	switch {
	case opts.help:
		fs.printHelp(os.Stdout)
		return
	case opts.version:
		fmt.Println(programName, version())
		return
	}
	for _, f := range fs.ignoredFlags() {
		if f.invalid != "" {
			klog.InfoS("Ignoring a cloud-controller-manager flag: accepted for compatibility, it means nothing here", "flag", "--"+f.name, "value", f.value, "invalidUpstream", f.invalid)
			continue
		}
		klog.InfoS("Ignoring a cloud-controller-manager flag: accepted for compatibility, it means nothing here", "flag", "--"+f.name, "value", f.value)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		klog.ErrorS(err, "Exiting")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

// version is the module version the binary was built from, as go build
// records it ("(devel)" for a build from a work tree).
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
