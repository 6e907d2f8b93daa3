package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/cloud-provider/names"
	ccmoptions "k8s.io/cloud-provider/options"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // the cloud-controller-manager's --log-json-* flags
	"k8s.io/component-base/version/verflag"
)

// The existing kube-vip-cloud-provider is a cloud-controller-manager built on
// k8s.io/cloud-provider: its binary accepts that whole flag set, and the
// manifests and Helm values written for it may pass any of them. So this
// binary accepts the same set, taken from the same package (it follows
// upstream when the dependency moves). The flags that mean something here
// are defined by us (flags.go) and honoured; the rest are accepted and
// ignored, and logged at start when set.

// ccmFlags returns the flags of the cloud-controller-manager of the
// k8s.io/cloud-provider version we build against, grouped as it groups them,
// with the global group (logging, --version, --help) it adds.
func ccmFlags(programName string) (cliflag.NamedFlagSets, error) {
	opts, err := ccmoptions.NewCloudControllerManagerOptions()
	if err != nil {
		return cliflag.NamedFlagSets{}, fmt.Errorf("cloud-controller-manager options: %w", err)
	}
	controllers := []string{names.CloudNodeController, names.ServiceLBController, names.NodeRouteController, names.CloudNodeLifecycleController}
	fss := opts.Flags(controllers, nil, names.CCMControllerAliases(), nil, nil)
	global := fss.FlagSet("global")
	verflag.AddFlags(global)
	logsapi.AddFlags(logsapi.NewLoggingConfiguration(), global)
	globalflag.AddGlobalFlags(global, programName, logs.SkipLoggingConfigurationFlags())
	return fss, nil
}

// addCompatFlags adds to dst every cloud-controller-manager flag for which
// defined is false.
func addCompatFlags(dst *pflag.FlagSet, defined func(name string) bool) error {
	fss, err := ccmFlags(programName)
	if err != nil {
		return err
	}
	for _, name := range fss.Order {
		fss.FlagSets[name].VisitAll(func(f *pflag.Flag) {
			if !defined(f.Name) && dst.Lookup(f.Name) == nil {
				g := *f
				g.Value = &ignoredValue{Value: f.Value}
				dst.AddFlag(&g)
			}
		})
	}
	return nil
}

// ignoredValue is the value of a compatibility flag. It accepts whatever
// it is given: the flag means nothing here, so a value upstream would reject
// (a feature gate this Kubernetes minor no longer knows, say) must not stop
// the binary either. It keeps the values as given, for the log.
type ignoredValue struct {
	pflag.Value
	given   []string
	invalid []string // upstream's reasons to reject some of them
}

// Set records s, and passes it to upstream's value where that accepts it.
func (v *ignoredValue) Set(s string) error {
	v.given = append(v.given, s)
	if err := v.Value.Set(s); err != nil {
		v.invalid = append(v.invalid, err.Error())
	}
	return nil
}

// ignoredFlag is a compatibility flag that was set.
type ignoredFlag struct {
	name  string
	value string // as given; several times given, joined by spaces
	// invalid says why the cloud-controller-manager would have rejected
	// the value, or is empty.
	invalid string
}

// ignoredFlags lists the compatibility flags set on the command line, in
// the order of their names.
func (fs *flagSet) ignoredFlags() []ignoredFlag {
	var out []ignoredFlag
	fs.compat.VisitAll(func(f *pflag.Flag) {
		v, ok := f.Value.(*ignoredValue)
		if !f.Changed || !ok {
			return
		}
		out = append(out, ignoredFlag{name: f.Name, value: strings.Join(v.given, " "), invalid: strings.Join(v.invalid, "; ")})
	})
	return out
}
