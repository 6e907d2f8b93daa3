package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kvcp-dev/kube-vip-cloud-provider/sim"
)

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
