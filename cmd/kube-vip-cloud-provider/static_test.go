package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDockerfileBuildIsStatic builds the binary with the Dockerfile's own
// command and checks it needs no dynamic loader, as distroless/static
// requires. (Building the image itself needs a Docker engine: make image.)
func TestDockerfileBuildIsStatic(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/kube-vip-cloud-provider ./cmd/kube-vip-cloud-provider`).Match(raw) {
		t.Fatal("the Dockerfile's build command changed: update this test with it")
	}
	if !regexp.MustCompile(`(?m)^FROM gcr.io/distroless/static:nonroot$`).Match(raw) || !regexp.MustCompile(`(?m)^USER 65532:65532$`).Match(raw) {
		t.Fatal("the final stage must be distroless/static:nonroot running as 65532")
	}
	bin := filepath.Join(t.TempDir(), "kube-vip-cloud-provider")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("the binary is dynamically linked (%v): it would not run on distroless/static", p.Type)
		}
	}
}
