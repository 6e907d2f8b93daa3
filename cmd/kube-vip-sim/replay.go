package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kvcp-dev/kube-vip-cloud-provider/sim"
)

func replay(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay")
	output := fs.String("output", "table", "table or json")
	seed := fs.Int64("seed", 0, "override the scenarios' seeds")
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
		res, err := sim.Run(sc, sim.Options{Seed: *seed, NoClaims: *noClaims})
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
