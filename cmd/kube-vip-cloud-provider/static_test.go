package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDockerfileBuildIsStatic builds the binary with `make image`'s own
// command and checks it needs no dynamic loader, as the Dockerfile's empty
// base (scratch) requires. (Building the image itself needs a Docker
// engine: make image.)
func TestDockerfileBuildIsStatic(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`CGO_ENABLED=0 \$\(GO\) build -trimpath -ldflags "-s -w" -o \$\(BIN\)/kube-vip-cloud-provider ./cmd/kube-vip-cloud-provider`).Match(mk) {
		t.Fatal("make image's build command changed: update this test with it")
	}
	for _, want := range []string{`(?m)^FROM scratch$`, `(?m)^COPY bin/kube-vip-cloud-provider /kube-vip-cloud-provider$`, `(?m)^USER 65532:65532$`} {
		if !regexp.MustCompile(want).Match(raw) {
			t.Fatalf("the Dockerfile must match %s: the binary on an empty base (nothing pulled), running as 65532", want)
		}
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
			t.Fatalf("the binary is dynamically linked (%v): it would not run on an empty base", p.Type)
		}
	}
}
