package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestReplayExitCodes(t *testing.T) {
	code, out, _ := runCLI(t, "replay", "../../sim/scenarios/05-exhaustion-release.yaml")
	if code != 0 || !strings.Contains(out, "AddressAssigned") || !strings.Contains(out, "allocations/s") {
		t.Fatalf("replay of a passing scenario: exit %d\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("config: {cidr-global: 10.0.0.0/30}\nsteps:\n  - create: {service: default/a}\n  - expect: {service: default/a, addresses: [10.0.0.3]}\n"), 0o644)
	code, _, errOut := runCLI(t, "replay", bad)
	if code != 1 || !strings.Contains(errOut, "expect default/a") {
		t.Fatalf("a failed expect: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "replay", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 2 || errOut == "" {
		t.Fatalf("a missing file: exit %d", code)
	}
	code, _, _ = runCLI(t, "frobnicate")
	if code != 2 {
		t.Fatalf("an unknown command: exit %d", code)
	}
}

func TestReplayJSON(t *testing.T) {
	code, out, _ := runCLI(t, "replay", "--output", "json", "../../sim/scenarios/03-sharing.yaml")
	var res struct {
		Rows []struct{ Service, Addresses string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Rows) == 0 {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestExploreWritesAShrunkReplayableFailure(t *testing.T) {
	code, out, _ := runCLI(t, "explore", "--seed", "1", "--steps", "60", "--runs", "20")
	if code != 0 || !strings.Contains(out, "no invariant broken") {
		t.Fatalf("explore with the ledger: exit %d %q", code, out)
	}
	path := filepath.Join(t.TempDir(), "failure.yaml")
	code, _, errOut := runCLI(t, "explore", "--seed", "1", "--steps", "60", "--runs", "20", "--no-ledger", "--out", path)
	if code != 1 || !strings.Contains(errOut, path) {
		t.Fatalf("explore without a ledger should fail and write %s: exit %d %q", path, code, errOut)
	}
	code, _, errOut = runCLI(t, "replay", "--no-ledger", path)
	if code != 1 || !strings.Contains(errOut, "held by two Services") {
		t.Fatalf("replaying the written failure: exit %d %q", code, errOut)
	}
}

func TestGenerateAndPlanFromAScenario(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen.yaml")
	if code, _, errOut := runCLI(t, "generate", "--services", "50", "--pools", "global=10.0.0.0/24", "--out", gen); code != 0 {
		t.Fatalf("generate: %d %s", code, errOut)
	}
	newCM := filepath.Join(dir, "new.yaml")
	os.WriteFile(newCM, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubevip, namespace: kube-system}\ndata:\n  cidr-global: 10.0.0.0/27\n"), 0o644)
	code, out, errOut := runCLI(t, "plan", "--config", newCM, "--scenario", gen)
	if code != 0 {
		t.Fatalf("plan: %d %s", code, errOut)
	}
	// 50 Services hold .1-.50; a /27 holds .1-.31: 19 would be outside.
	if n := strings.Count(out, "keep, outside pool"); n != 19 {
		t.Fatalf("%d Services outside the new pool, want 19\n%s", n, out)
	}
	if !strings.Contains(out, "global  IPv4    32") && !strings.Contains(out, "global") {
		t.Fatalf("no pool table:\n%s", out)
	}
}
