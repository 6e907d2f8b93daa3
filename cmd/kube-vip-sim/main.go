// Command kube-vip-sim replays what kube-vip-cloud-provider would do:
//
//	kube-vip-sim replay FILE...            run scenario files, check their expects
//	kube-vip-sim explore --seed S --steps N random scenarios against the invariants
//	kube-vip-sim plan --config NEW.yaml    what a new ConfigMap would change
//	kube-vip-sim generate --services N     a large scenario for scale runs
//
// See the README for the scenario format.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/envvar"
	"github.com/kvcp-dev/kube-vip-cloud-provider/sim"
)

const usage = `usage:
  kube-vip-sim replay [--output table|json] [--seed N] [--no-ledger] [--no-claims] FILE...
  kube-vip-sim explore --seed S --steps N [--runs R] [--config FILE] [--out FILE] [--no-ledger] [--no-claims]
  kube-vip-sim plan --config NEW.yaml [--kubeconfig PATH | --scenario FILE] [--config-map NAME] [--namespace NS]
                    [--enable-loadbalancerclass] [--loadbalancerclass-name NAME] [--allow-invalid]
  kube-vip-sim generate --services N [--pools NS=CIDR,...] [--out FILE]
Flags may come before or after the files; -- ends them.
Exit codes: 0 ok; 1 an expect or invariant failed, or plan's new ConfigMap has a
malformed key (--allow-invalid: 0); 2 bad usage or input.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code: 0 ok, 1 a failed
// expect or invariant (or, for plan, a malformed key in the new
// ConfigMap), 2 bad usage or input.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "replay":
		err = replay(args[1:], stdout, stderr)
	case "explore":
		err = explore(args[1:], stdout)
	case "plan":
		err = plan(args[1:], stdout)
	case "generate":
		err = generate(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "kube-vip-sim: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var fe failed
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.As(err, &fe):
		fmt.Fprintln(stderr, "kube-vip-sim:", err)
		return 1
	default:
		fmt.Fprintln(stderr, "kube-vip-sim:", err)
		return 2
	}
}

// failed marks an error as a failed expect or invariant (exit code 1).
type failed struct{ error }

// newFlags returns a flag set that reports errors only through parse.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses args with flags anywhere among the arguments (replay FILE
// --output json as well as replay --output json FILE), as --flag=value or
// --flag value; "--" ends the flags. It returns the other arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w (see kube-vip-sim --help)", fs.Name(), err)
		}
		left := fs.Args()
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" {
			return append(rest, left...), nil
		}
		if len(left) == 0 {
			return rest, nil
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}

// parseNoArgs parses a command's flags; it takes no other arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	rest, err := parse(fs, args)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%s: unexpected argument %q (see kube-vip-sim --help)", fs.Name(), rest[0])
	}
	return err
}

func replay(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay")
	output := fs.String("output", "table", "table or json")
	seed := fs.Int64("seed", 0, "override the scenarios' seeds")
	noLedger := fs.Bool("no-ledger", false, "model a controller without a ledger and without address claims (to watch the classic double allocation)")
	noClaims := fs.Bool("no-claims", false, "model controllers without address claims (with active: 2, to watch two controllers give one address to two Services)")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return errors.New("replay: give at least one scenario file")
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("--output %q: must be table or json", *output)
	}
	var failures, invalid []string
	var reports []sim.Report
	tables := 0
	for _, path := range files {
		sc, err := sim.Load(path)
		if err != nil {
			invalid = append(invalid, err.Error())
			reports = append(reports, sim.NewReport(path, nil, err))
			continue
		}
		start := time.Now()
		res, err := sim.Run(sc, sim.Options{Seed: *seed, NoClaims: *noClaims || *noLedger, Flaws: decide.Flaws{NoLedger: *noLedger}})
		wall := time.Since(start)
		if res == nil { // the scenario did not validate
			invalid = append(invalid, fmt.Sprintf("%s: %v", path, err))
			reports = append(reports, sim.NewReport(path, nil, err))
			continue
		}
		// Timing varies from run to run: it goes to stderr, so that stdout
		// is the same, byte for byte, for the same scenario and seed.
		fmt.Fprintf(stderr, "%s: wall time %v, %.0f allocations/s\n", path, wall.Round(time.Microsecond), float64(res.Allocations)/wall.Seconds())
		if *output == "json" {
			reports = append(reports, sim.NewReport(path, res, err))
		} else {
			if tables > 0 {
				fmt.Fprintln(stdout)
			}
			tables++
			if err := sim.WriteTable(stdout, res); err != nil {
				return err
			}
		}
		switch {
		case err == nil:
		case sim.IsFailure(err):
			failures = append(failures, fmt.Sprintf("%s: %v", path, err))
		default:
			invalid = append(invalid, fmt.Sprintf("%s: %v", path, err))
		}
	}
	if *output == "json" {
		if err := sim.WriteJSON(stdout, reports, len(files) == 1); err != nil {
			return err
		}
	}
	if len(invalid) > 0 {
		return errors.New(strings.Join(append(invalid, failures...), "\n"))
	}
	if len(failures) > 0 {
		return failed{errors.New(strings.Join(failures, "\n"))}
	}
	return nil
}

func explore(args []string, out io.Writer) error {
	fs := newFlags("explore")
	seed := fs.Int64("seed", 1, "first seed")
	steps := fs.Int("steps", 100, "steps per scenario")
	runs := fs.Int("runs", 1, "scenarios to try, with seeds seed, seed+1, ...")
	config := fs.String("config", "", "a scenario or ConfigMap file whose pools to use")
	outFile := fs.String("out", "", "where to write a failing scenario (default explore-failure-seed-S.yaml)")
	noLedger := fs.Bool("no-ledger", false, "model a controller without a ledger and without address claims (to watch the classic double allocation)")
	noClaims := fs.Bool("no-claims", false, "model controllers without address claims (with active: 2, to watch two controllers give one address to two Services)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *steps < 1 || *runs < 1 {
		return errors.New("--steps and --runs must be at least 1")
	}
	var data map[string]string
	if *config != "" {
		d, err := readConfig(*config)
		if err != nil {
			return err
		}
		data = d
	}
	for i := 0; i < *runs; i++ {
		s := *seed + int64(i)
		sc := sim.Random(s, *steps, data)
		o := sim.Options{NoClaims: *noClaims || *noLedger, Flaws: decide.Flaws{NoLedger: *noLedger}}
		_, err := sim.Run(sc, o)
		if err == nil {
			continue
		}
		if !sim.IsFailure(err) {
			return fmt.Errorf("seed %d: %w", s, err)
		}
		small := sim.Shrink(sc, o)
		small.Name = fmt.Sprintf("explore-failure-seed-%d", s)
		raw, merr := yaml.Marshal(small)
		if merr != nil {
			return merr
		}
		path := *outFile
		if path == "" {
			path = small.Name + ".yaml"
		}
		if werr := os.WriteFile(path, raw, 0o644); werr != nil {
			return werr
		}
		again := "kube-vip-sim replay " + path
		if *noLedger {
			again = "kube-vip-sim replay --no-ledger " + path
		}
		return failed{fmt.Errorf("seed %d: %v\nshrunk from %d to %d steps, written to %s (replay it with: %s)",
			s, err, len(sc.Steps), len(small.Steps), path, again)}
	}
	fmt.Fprintf(out, "ok: %d scenarios of %d steps (seeds %d-%d), no invariant broken\n", *runs, *steps, *seed, *seed+int64(*runs)-1)
	return nil
}

// readConfig reads ConfigMap data from a ConfigMap manifest, a scenario
// file (its config), or a plain YAML map.
func readConfig(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Kind   string            `json:"kind"`
		Data   map[string]string `json:"data"`
		Config map[string]string `json:"config"`
	}
	if err := yaml.Unmarshal(raw, &probe); err == nil {
		switch {
		case probe.Kind == "ConfigMap":
			return probe.Data, nil
		case probe.Config != nil:
			return probe.Config, nil
		}
	}
	var plain map[string]string
	if err := yaml.Unmarshal(raw, &plain); err != nil {
		return nil, fmt.Errorf("%s: neither a ConfigMap, a scenario nor a map of keys: %w", path, err)
	}
	return plain, nil
}

func plan(args []string, out io.Writer) error {
	fs := newFlags("plan")
	config := fs.String("config", "", "the new ConfigMap (a manifest or a map of keys)")
	kubeconfig := fs.String("kubeconfig", "", "read the live Services and ConfigMap from this cluster (default $KUBECONFIG or ~/.kube/config)")
	scenario := fs.String("scenario", "", "read the Services and ConfigMap a scenario leaves instead of a cluster")
	cmName := fs.String("config-map", "kubevip", "the ConfigMap's name")
	cmNS := fs.String("namespace", "kube-system", "the ConfigMap's namespace")
	enableClass := fs.Bool("enable-loadbalancerclass", false, "handle only Services of --loadbalancerclass-name, as the controller so started (default: env "+envvar.EnableLoadBalancerClass+"; with --scenario, its loadBalancerClass)")
	className := fs.String("loadbalancerclass-name", "", "the loadBalancerClass handled (default: env "+envvar.LoadBalancerClassName+", else "+decide.DefaultLoadBalancerClass+")")
	allowInvalid := fs.Bool("allow-invalid", false, "exit 0 even when the new ConfigMap has a malformed key")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *config == "" {
		return errors.New("plan: --config NEW.yaml is required")
	}
	newData, err := readConfig(*config)
	if err != nil {
		return err
	}
	var svcs []*corev1.Service
	var oldData map[string]string
	var opts decide.Options
	if *scenario != "" {
		sc, err := sim.Load(*scenario)
		if err != nil {
			return err
		}
		if svcs, oldData, err = sc.Services(); err != nil {
			return err
		}
		opts = sc.ControllerOptions()
	} else {
		// As the controller: the environment it runs with, then the flags.
		if v := os.Getenv(envvar.EnableLoadBalancerClass); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: not a boolean", envvar.EnableLoadBalancerClass, v)
			}
			opts.EnableLoadBalancerClass = b
		}
		opts.LoadBalancerClass = os.Getenv(envvar.LoadBalancerClassName)
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = *kubeconfig
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if clientcmd.IsEmptyConfig(err) {
			return errors.New("plan: no cluster to read the Services from: set KUBECONFIG, pass --kubeconfig PATH, or plan against a scenario with --scenario FILE")
		}
		if err != nil {
			return fmt.Errorf("plan: find the cluster: %w", err)
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		ctx := context.Background()
		list, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list Services: %w", err)
		}
		for i := range list.Items {
			svcs = append(svcs, &list.Items[i])
		}
		cm, err := client.CoreV1().ConfigMaps(*cmNS).Get(ctx, *cmName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			// Not installed yet (a switch from another tool): no pools now.
			fmt.Fprintf(out, "note: no ConfigMap %s/%s yet: planning against no pools\n", *cmNS, *cmName)
		case err != nil:
			return fmt.Errorf("read ConfigMap %s/%s: %w", *cmNS, *cmName, err)
		default:
			oldData = cm.Data
		}
	}
	if set["enable-loadbalancerclass"] {
		opts.EnableLoadBalancerClass = *enableClass
	}
	if set["loadbalancerclass-name"] {
		opts.LoadBalancerClass = *className
	}
	if opts.EnableLoadBalancerClass && opts.LoadBalancerClass == "" {
		opts.LoadBalancerClass = decide.DefaultLoadBalancerClass
	}
	p := sim.MakePlan(svcs, oldData, newData, opts)
	if err := p.Write(out); err != nil {
		return err
	}
	if len(p.MalformedKeys) > 0 && !*allowInvalid {
		return failed{fmt.Errorf("plan: %s: the new ConfigMap has malformed keys (%s); the controller would report them and keep their last good values. Fix them, or pass --allow-invalid to accept that",
			*config, strings.Join(p.MalformedKeys, ", "))}
	}
	return nil
}

func generate(args []string, out io.Writer) error {
	fs := newFlags("generate")
	n := fs.Int("services", 1000, "how many Services")
	pools := fs.String("pools", "", "NS=CIDR,... (default global=10.0.0.0/12)")
	outFile := fs.String("out", "", "file to write (default stdout)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var p map[string]string
	if *pools != "" {
		p = map[string]string{}
		for _, kv := range strings.Split(*pools, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("--pools %q: write NS=CIDR", kv)
			}
			p[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	sc, err := sim.Generate(*n, p)
	if err != nil {
		return err
	}
	raw, err := yaml.Marshal(sc)
	if err != nil {
		return err
	}
	if *outFile == "" {
		_, err = out.Write(raw)
		return err
	}
	return os.WriteFile(*outFile, raw, 0o644)
}
