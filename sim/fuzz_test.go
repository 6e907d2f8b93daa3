package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzParseScenario: the scenario parser never panics; what it accepts,
// written back as YAML, reads back to a scenario that writes the same
// (the written form is a fixed point); and it runs without panicking.
func FuzzParseScenario(f *testing.F) {
	files, _ := filepath.Glob("scenarios/*.yaml")
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte(`steps: [{lag: 2}, {create: {service: a/b, ports: [53/UDP]}}]`))
	f.Add([]byte(allSyntax))
	for _, step := range []string{
		"conflict: {}", "conflict:", "conflict: 2", "conflict: default/web", "conflict: {service: a/b, count: 2}", "conflict",
		"restart:", "settle:", "handover: ~", "settle", "lag: \"3\"", "config:", "lose: 2", "lose:", "lose: 0", "drop: 1", "drop:",
		"expect: {service: a/b, addresses: []}", "expect: {service: a/b, noAddress: false}",
		"expect: {service: a/b, address: 10.0.0.1}", "expect: {service: a/b, reason: AddressAssigned}",
		"expect: {service: a/b, event: AllocationFailed, kind: PoolExhausted}", "expect: {service: a/b, kind: noPool}",
		"expect: {configmap: true, event: InvalidConfig, key: cidr-global}", "expect: {configmap: true}",
		"create: a/b", "delete: a/b", "update: {service: a/b, ports: [], loadBalancerClass: \"\"}",
		"delete: {service: yes}", "frobnicate: {}", "create:\n    service: a/b",
	} {
		f.Add([]byte("config: {cidr-global: 10.0.0.0/29}\nsteps:\n  - create: {service: a/b}\n  - " + step + "\n"))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sc, err := ParseScenario(raw)
		if err != nil {
			return
		}
		written, err := yaml.Marshal(sc)
		if err != nil {
			t.Fatalf("cannot write an accepted scenario: %v", err)
		}
		again, err := ParseScenario(written)
		if err != nil {
			t.Fatalf("the written scenario does not parse: %v\n%s", err, written)
		}
		rewritten, err := yaml.Marshal(again)
		if err != nil || !bytes.Equal(written, rewritten) {
			t.Fatalf("written twice, the scenario changed (%v):\n%s\n---\n%s", err, written, rewritten)
		}
		if len(sc.Steps) > 50 {
			return
		}
		_, _ = Run(sc, Options{MaxWork: 5000})
	})
}
