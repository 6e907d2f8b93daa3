package sim

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseScenario: the scenario parser never panics, and what it accepts
// runs without a scenario error panic either.
func FuzzParseScenario(f *testing.F) {
	files, _ := filepath.Glob("scenarios/*.yaml")
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte(`steps: [{lag: 2}, {create: {service: a/b, ports: [53/UDP]}}]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		sc, err := ParseScenario(raw)
		if err != nil {
			return
		}
		if len(sc.Steps) > 50 {
			return
		}
		_, _ = Run(sc, Options{MaxWork: 5000})
	})
}
