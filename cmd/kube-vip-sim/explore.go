package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/kvcp-dev/kube-vip-cloud-provider/sim"
)

func explore(args []string, out io.Writer) error {
	fs := newFlags("explore")
	seed := fs.Int64("seed", 1, "first seed")
	steps := fs.Int("steps", 100, "steps per scenario")
	runs := fs.Int("runs", 1, "scenarios to try, with seeds seed, seed+1, ...")
	config := fs.String("config", "", "a scenario or ConfigMap file whose pools to use")
	outFile := fs.String("out", "", "where to write a failing scenario (default explore-failure-seed-S.yaml)")
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
		o := sim.Options{NoClaims: *noClaims}
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
		if *noClaims {
			again = "kube-vip-sim replay --no-claims " + path
		}
		return failed{fmt.Errorf("seed %d: %v\nshrunk from %d to %d steps, written to %s (replay it with: %s)",
			s, err, len(sc.Steps), len(small.Steps), path, again)}
	}
	fmt.Fprintf(out, "ok: %d scenarios of %d steps (seeds %d-%d), no invariant broken\n", *runs, *steps, *seed, *seed+int64(*runs)-1)
	return nil
}
