package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// write puts a file in a temporary directory and returns its path.
func write(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	passing = "config: {cidr-global: 10.0.0.0/30}\nsteps:\n  - create: {service: default/a}\n  - expect: {service: default/a, addresses: [10.0.0.1]}\n"
	failing = "config: {cidr-global: 10.0.0.0/30}\nsteps:\n  - create: {service: default/a}\n  - expect: {service: default/a, addresses: [10.0.0.3]}\n"
	invalid = "steps:\n  - create: {service: default/a}\n  - frobnicate: {}\n"
)

func TestReplayExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   string // a substring of stdout
		stderr   string // a substring of stderr
		noStdout string // must not be in stdout
	}{
		{"passing", []string{"replay", write(t, "ok.yaml", passing)}, 0, "AddressAssigned", "allocations/s", "allocations/s"},
		{"failed expect", []string{"replay", write(t, "bad.yaml", failing)}, 1, "FAIL: step 2", "expect default/a", ""},
		{"invalid scenario", []string{"replay", write(t, "inv.yaml", invalid)}, 2, "", `step 2: unknown step "frobnicate"`, ""},
		{"missing file", []string{"replay", filepath.Join(t.TempDir(), "missing.yaml")}, 2, "", "missing.yaml", ""},
		{"invalid beats failed", []string{"replay", write(t, "bad.yaml", failing), write(t, "inv.yaml", invalid)}, 2, "FAIL", "frobnicate", ""},
		{"unknown command", []string{"frobnicate"}, 2, "", "unknown command", ""},
		{"unknown flag", []string{"replay", "--colour", "x.yaml"}, 2, "", "flag provided but not defined: -colour", ""},
		{"help", []string{"replay", "--help"}, 0, "usage:", "", ""},
		{"no files", []string{"replay", "--output", "json"}, 2, "", "at least one scenario file", ""},
		{"stray argument", []string{"generate", "--services", "3", "extra"}, 2, "", `unexpected argument "extra"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) ||
				(tc.noStdout != "" && strings.Contains(out, tc.noStdout)) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
		})
	}
}

func TestFlagsMayFollowTheFiles(t *testing.T) {
	file := write(t, "ok.yaml", passing)
	for _, args := range [][]string{
		{"replay", "--output", "json", file},
		{"replay", file, "--output", "json"},
		{"replay", file, "--output=json"},
		{"replay", "--seed", "3", file, "--output=json", "--no-claims"},
		{"replay", "--output", "json", "--", file},
	} {
		t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, args...)
			var rep struct {
				File string
				OK   bool
			}
			if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.File != file || !rep.OK {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
	}
	// After "--", a name that looks like a flag is a file.
	code, _, errOut := runCLI(t, "replay", "--", "--output")
	if code != 2 || !strings.Contains(errOut, "--output: no such file") {
		t.Fatalf("replay -- --output: exit %d %q", code, errOut)
	}
	gen := filepath.Join(t.TempDir(), "gen.yaml")
	if code, _, errOut := runCLI(t, "generate", "--out", gen, "--services", "5"); code != 0 {
		t.Fatalf("generate: %d %s", code, errOut)
	}
}

func TestReplayStdoutIsTheSameEveryTime(t *testing.T) {
	files, err := filepath.Glob("../../sim/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, output := range []string{"table", "json"} {
		args := append([]string{"replay", "--output", output}, files...)
		_, first, errFirst := runCLI(t, args...)
		_, second, _ := runCLI(t, args...)
		if first != second {
			t.Fatalf("--output %s: two replays of the same files printed different stdout:\n%s\n---\n%s", output, first, second)
		}
		if strings.Contains(first, "wall time") || !strings.Contains(errFirst, "wall time") {
			t.Fatalf("--output %s: the wall time belongs on stderr\nstdout:\n%s\nstderr:\n%s", output, first, errFirst)
		}
	}
}

type report struct {
	File        string
	Scenario    string
	OK          bool
	Failure     string
	FailureKind string
	FailedStep  int
	Rows        []struct {
		Step      int
		Actor     string
		Service   string
		Addresses []string
		Reason    string
		Message   string
	}
}

func TestReplayJSONIsOneValue(t *testing.T) {
	ok, bad, inv := write(t, "ok.yaml", passing), write(t, "bad.yaml", failing), write(t, "inv.yaml", invalid)

	code, out, _ := runCLI(t, "replay", "--output", "json", ok)
	var one report
	if err := json.Unmarshal([]byte(out), &one); err != nil || code != 0 {
		t.Fatalf("one file: exit %d, %v\n%s", code, err, out)
	}
	if !one.OK || one.Scenario != "ok" || len(one.Rows) == 0 {
		t.Fatalf("one file: %+v", one)
	}
	var assigned bool
	for _, r := range one.Rows {
		if r.Reason == "AddressAssigned" {
			assigned = true
			if len(r.Addresses) != 1 || r.Addresses[0] != "10.0.0.1" || !strings.Contains(r.Message, "10.0.0.1") {
				t.Fatalf("the AddressAssigned row: %+v", r)
			}
		}
	}
	if !assigned {
		t.Fatalf("no AddressAssigned row: %+v", one.Rows)
	}
	if strings.Contains(out, "wall") || strings.Contains(out, "allocations/s") {
		t.Fatalf("timing in the JSON:\n%s", out)
	}

	code, out, _ = runCLI(t, "replay", ok, bad, inv, "--output", "json")
	var many []report
	if err := json.Unmarshal([]byte(out), &many); err != nil {
		t.Fatalf("several files: %v\n%s", err, out)
	}
	if code != 2 || len(many) != 3 {
		t.Fatalf("several files: exit %d, %d reports", code, len(many))
	}
	want := []struct {
		ok   bool
		kind string
		step int
	}{{true, "", 0}, {false, "expect", 2}, {false, "invalid", 0}}
	for i, w := range want {
		r := many[i]
		if r.OK != w.ok || r.FailureKind != w.kind || r.FailedStep != w.step || (!r.OK && r.Failure == "") {
			t.Errorf("report %d: %+v, want ok %v kind %q step %d and a failure message", i, r, w.ok, w.kind, w.step)
		}
	}
}

func TestExploreWritesAShrunkReplayableFailure(t *testing.T) {
	code, out, _ := runCLI(t, "explore", "--seed", "1", "--steps", "60", "--runs", "20")
	if code != 0 || !strings.Contains(out, "no invariant broken") {
		t.Fatalf("explore with the ledger: exit %d %q", code, out)
	}
	path := filepath.Join(t.TempDir(), "failure.yaml")
	// Without address claims, two controllers acting at once give one
	// address to two Services: the explorer draws that within 300 runs
	// (at seed 94 today) and stops at the first.
	code, _, errOut := runCLI(t, "explore", "--seed", "1", "--steps", "150", "--runs", "300", "--no-claims", "--out", path)
	if code != 1 || !strings.Contains(errOut, path) || !strings.Contains(errOut, "replay --no-claims") {
		t.Fatalf("explore without claims should fail and write %s: exit %d %q", path, code, errOut)
	}
	code, _, errOut = runCLI(t, "replay", path, "--no-claims")
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
	newCM := write(t, "new.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubevip, namespace: kube-system}\ndata:\n  cidr-global: 10.0.0.0/27\n")
	code, out, errOut := runCLI(t, "plan", "--config", newCM, "--scenario", gen)
	if code != 0 {
		t.Fatalf("plan: %d %s", code, errOut)
	}
	// 50 Services hold .1-.50; a /27 holds .1-.31: 19 would be outside.
	if n := strings.Count(out, "keep, outside pool"); n != 19 {
		t.Fatalf("%d Services outside the new pool, want 19\n%s", n, out)
	}
	if !strings.Contains(out, "global  IPv4    31    31    0") {
		t.Fatalf("no pool table:\n%s", out)
	}
}

func TestPlanHonoursTheLoadBalancerClass(t *testing.T) {
	// Only default/ours is of the scenario's class; the other two are not
	// the controller's to plan.
	scenario := write(t, "class.yaml", `
config: {cidr-global: 10.0.0.0/30}
loadBalancerClass: kube-vip.io/kube-vip-class
steps:
  - create: {service: default/ours, loadBalancerClass: kube-vip.io/kube-vip-class}
  - create: {service: default/noclass}
  - create: {service: default/custom, loadBalancerClass: example.com/lb}
`)
	newCM := write(t, "new.yaml", "cidr-global: 10.0.0.0/29\n")
	for _, tc := range []struct {
		name      string
		args      []string
		planned   []string
		unplanned []string
	}{
		{"the scenario's class", nil, []string{"default/ours"}, []string{"default/noclass", "default/custom"}},
		{"a flag overrides it", []string{"--loadbalancerclass-name", "example.com/lb"}, []string{"default/custom"}, []string{"default/ours", "default/noclass"}},
		{"class support off", []string{"--enable-loadbalancerclass=false"}, []string{"default/noclass"}, []string{"default/ours", "default/custom"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"plan", "--config", newCM, "--scenario", scenario}, tc.args...)
			code, out, errOut := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("plan: %d %s", code, errOut)
			}
			for _, s := range tc.planned {
				if !strings.Contains(out, s) {
					t.Errorf("%s is not in the plan:\n%s", s, out)
				}
			}
			for _, s := range tc.unplanned {
				if strings.Contains(out, s) {
					t.Errorf("%s is in the plan, but not of the handled class:\n%s", s, out)
				}
			}
		})
	}
}

func TestPlanRefusesAMalformedNewConfig(t *testing.T) {
	scenario := write(t, "s.yaml", passing)
	bad := write(t, "bad.yaml", "cidr-global: 10.0.0.0/30\ncidr-x: 10.1.0.5\nrange-y: 10.2.0.9-10.2.0.1\n")
	good := write(t, "good.yaml", "cidr-global: 10.0.0.0/29\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"a malformed key", []string{"plan", "--config", bad, "--scenario", scenario}, 1,
			"the new ConfigMap has malformed keys (cidr-x, range-y); the controller would report them and keep their last good values. Fix them, or pass --allow-invalid"},
		{"allowed", []string{"plan", "--config", bad, "--scenario", scenario, "--allow-invalid"}, 0, ""},
		{"a good config", []string{"plan", "--config", good, "--scenario", scenario}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			// The plan is printed either way, and the errors with it.
			if !strings.Contains(out, "default/a") {
				t.Errorf("no plan printed:\n%s", out)
			}
			if tc.code != 0 || tc.name == "allowed" {
				if !strings.Contains(out, `config error: parse cidr-x="10.1.0.5": entry "10.1.0.5": not a CIDR (ADDRESS/BITS) or a range (FROM-TO): for the one address, write 10.1.0.5/32`) {
					t.Errorf("the malformed key is not shown, with how to write it:\n%s", out)
				}
			}
		})
	}
}

func TestPlanWithoutAClusterSaysWhatToDo(t *testing.T) {
	// No KUBECONFIG, no ~/.kube/config, not in a cluster.
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	newCM := write(t, "new.yaml", "cidr-global: 10.0.0.0/29\n")
	code, _, errOut := runCLI(t, "plan", "--config", newCM)
	want := "plan: no cluster to read the Services from: set KUBECONFIG, pass --kubeconfig PATH, or plan against a scenario with --scenario FILE"
	if code != 2 || !strings.Contains(errOut, want) || strings.Contains(errOut, "KUBERNETES_MASTER") {
		t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut, want)
	}
}

// TestReplayShowsTheStartingConfigAsStepZero: a malformed key of the
// starting config is an InvalidConfig row of step 0, with how to write
// a bare address; a settle step has a row.
func TestReplayShowsTheStartingConfigAsStepZero(t *testing.T) {
	file := write(t, "bare.yaml", "config: {cidr-global: 10.0.0.5}\nsteps:\n  - create: {service: default/a}\n  - settle:\n  - expect: {service: default/a, kind: NoPool}\n")
	code, out, errOut := runCLI(t, "replay", file)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[2], "0 ") || !strings.Contains(lines[2], "cidr-global=10.0.0.5") {
		t.Fatalf("the first row is not the starting config at step 0:\n%s", out)
	}
	if !strings.HasPrefix(lines[3], "0 ") || !strings.Contains(lines[3], `InvalidConfig: parse cidr-global="10.0.0.5": entry "10.0.0.5": not a CIDR (ADDRESS/BITS) or a range (FROM-TO): for the one address, write 10.0.0.5/32`) {
		t.Fatalf("the second row is not step 0's InvalidConfig:\n%s", out)
	}
	if !strings.Contains(out, "\n2     user ") || !strings.Contains(out, "settle") {
		t.Fatalf("no row for the settle step 2:\n%s", out)
	}
}

// plan lists the keys the controller would ignore and the CIDRs it would
// read as another range, as the Events would say; neither fails the plan.
// A Service requesting an IPv6 Subnet-Router anycast address is shown.
func TestPlanListsUnknownKeysAndNotices(t *testing.T) {
	scenario := write(t, "s.yaml", "config: {cidr-global: 2001:db8:1::/64}\nsteps:\n  - create: {service: default/asks, loadBalancerIP: \"2001:db8:1::\"}\n")
	newCM := write(t, "new.yaml", "cidr-global: 2001:db8:1::5/64\nserach-order: desc\nallow_share-x: \"true\"\n")
	code, out, errOut := runCLI(t, "plan", "--config", newCM, "--scenario", scenario)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		`unknown key: key "allow_share-x" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "allow-share-x"?)`,
		`unknown key: key "serach-order" is not one kube-vip-cloud-provider understands: it is ignored (did you mean "search-order"?)`,
		`config notice: cidr-global: entry "2001:db8:1::5/64" has host bits set: it is read as 2001:db8:1::/64, that is 2001:db8:1::-2001:db8:1:0:ffff:ffff:ffff:ffff`,
		"default/asks  keep, anycast",
		"global  IPv6    18446744073709551615  0     18446744073709551615",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan does not show %q:\n%s", want, out)
		}
	}
}

// replay shows the ConfigMap's notices as config rows, each naming its key.
func TestReplayShowsConfigNotices(t *testing.T) {
	code, out, errOut := runCLI(t, "replay", "../../sim/scenarios/27-config-notices.yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, re := range []string{
		`(?m)^0 +controller +config +cidr-global +ConfigNotice: cidr-global: entry "192.168.0.220/29" has host bits set: it is read as 192.168.0.216/29, that is 192.168.0.216-192.168.0.223$`,
		`(?m)^0 +controller +config +serach-order +UnknownConfigKey: key "serach-order"`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no row matching %s:\n%s", re, out)
		}
	}
}
