package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/names"
	ccmoptions "k8s.io/cloud-provider/options"
	cliflag "k8s.io/component-base/cli/flag"
)

// upstreamFlags are the flags of a cloud-controller-manager command as
// k8s.io/cloud-provider's own app and options packages build it, and the
// existing provider's one flag of its own.
func upstreamFlags(t *testing.T) *pflag.FlagSet {
	t.Helper()
	opts, err := ccmoptions.NewCloudControllerManagerOptions()
	if err != nil {
		t.Fatal(err)
	}
	cmd := app.NewCloudControllerManagerCommand(opts, nil, app.DefaultInitFuncConstructors, names.CCMControllerAliases(), cliflag.NamedFlagSets{}, nil)
	fs := cmd.Flags()
	fs.Bool("OutSideCluster", false, "the existing kube-vip-cloud-provider's own flag")
	return fs
}

func TestAcceptsEveryCloudControllerManagerFlag(t *testing.T) {
	upstream := upstreamFlags(t)
	n := 0
	upstream.VisitAll(func(f *pflag.Flag) {
		n++
		t.Run(f.Name, func(t *testing.T) {
			var o options
			ours, err := newFlagSet(&o, func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			got := ours.all.Lookup(f.Name)
			if got == nil {
				t.Fatalf("--%s is not defined", f.Name)
			}
			if got.Shorthand != f.Shorthand {
				t.Errorf("--%s: shorthand %q, upstream %q", f.Name, got.Shorthand, f.Shorthand)
			}
			if (got.NoOptDefVal == "") != (f.NoOptDefVal == "") {
				t.Errorf("--%s: a value is optional here (%q) and upstream (%q) differently", f.Name, got.NoOptDefVal, f.NoOptDefVal)
			}
			// Where upstream accepts its own default, so must we: the flags
			// we define ourselves have a compatible type and validation.
			if err := f.Value.Set(f.DefValue); err != nil {
				return
			}
			arg := fmt.Sprintf("--%s=%s", f.Name, f.DefValue)
			if _, _, err := parseFlags([]string{arg}, func(string) string { return "" }); err != nil {
				t.Errorf("%s: %v", arg, err)
			}
		})
	})
	if n < 80 {
		t.Fatalf("only %d upstream flags: the list is not the cloud-controller-manager's", n)
	}
}

func TestIgnoredFlagsAreListed(t *testing.T) {
	_, fs, err := parseFlags([]string{
		"--leader-elect-resource-name=kube-vip-cloud-controller", "--master=https://api.example:6443", "--profiling",
		"--node-monitor-period=10s", "--cloud-provider=kubevip", "--authentication-skip-lookup", "--controllers=*,-route", "-v=0",
		"--controllers=-cloud-node", "--feature-gates=NoSuchGate=true", "--bind-address=not-an-address",
	}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs.ignoredFlags() {
		s := f.name + "=" + f.value
		if f.invalid != "" {
			s += " (invalid)"
		}
		got = append(got, s)
	}
	want := []string{"authentication-skip-lookup=true", "bind-address=not-an-address (invalid)", "cloud-provider=kubevip",
		"controllers=*,-route -cloud-node", "feature-gates=NoSuchGate=true (invalid)", "node-monitor-period=10s"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ignored flags %q, want %q", got, want)
	}
}

func TestHelpGroupsFlags(t *testing.T) {
	_, fs, err := parseFlags([]string{"--help"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fs.printHelp(&b)
	help := b.String()
	if first, _, _ := strings.Cut(help, "\n"); first != description {
		t.Fatalf("first line %q, want the description", first)
	}
	// Each section's heading, then a flag only that section shows.
	sections := []struct{ heading, flag string }{
		{"\nFlags:\n", "--config-map "},
		{"\nAccepted for compatibility", "--node-monitor-period "},
		{"\nLogging (klog):\n", "--log_dir "},
	}
	at := 0
	for _, s := range sections {
		h := strings.Index(help[at:], s.heading)
		if h < 0 {
			t.Fatalf("no %q after offset %d:\n%s", s.heading, at, help)
		}
		at += h
		f := strings.Index(help[at:], s.flag)
		if f < 0 {
			t.Fatalf("%q is not in the section %q", s.flag, strings.TrimSpace(s.heading))
		}
		at += f
	}
	// A flag we honour is shown once, with ours.
	compat := strings.Index(help, "\nAccepted for compatibility")
	for _, name := range []string{"master", "kube-api-qps", "concurrent-service-syncs", "profiling", "leader-elect-resource-name", "kubeconfig"} {
		lines := regexp.MustCompile(`(?m)^ +(-., )?--`+name+` `).FindAllStringIndex(help, -1)
		if len(lines) != 1 {
			t.Errorf("--%s shown %d times", name, len(lines))
			continue
		}
		if lines[0][0] > compat {
			t.Errorf("--%s is not among our flags", name)
		}
	}
}

func TestClientConfigHonoursFlags(t *testing.T) {
	o, _, err := parseFlags([]string{"--master=https://api.example:6443", "--kube-api-content-type=application/vnd.kubernetes.protobuf",
		"--kube-api-qps=50", "--kube-api-burst=100", "--OutSideCluster"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	cfg, err := clientConfig(o, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://api.example:6443" || cfg.ContentType != "application/vnd.kubernetes.protobuf" || cfg.QPS != 50 || cfg.Burst != 100 {
		t.Fatalf("host %q, content type %q, qps %v, burst %d", cfg.Host, cfg.ContentType, cfg.QPS, cfg.Burst)
	}
}
