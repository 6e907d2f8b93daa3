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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"
)

const usage = `usage:
  kube-vip-sim replay [--output table|json] [--seed N] [--no-claims] FILE...
  kube-vip-sim explore --seed S --steps N [--runs R] [--config FILE] [--out FILE] [--no-claims]
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
		err = plan(args[1:], stdout, stderr)
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
