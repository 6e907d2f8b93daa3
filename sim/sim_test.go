package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// replayEach replays every scenario file matching pattern (at least min of
// them), each in a subtest, and hands check its result.
func replayEach(t *testing.T, pattern string, min int, check func(t *testing.T, res *Result)) {
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) < min {
		t.Fatalf("scenario files %s: %v %v", pattern, files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			sc, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(sc, Options{})
			if err != nil {
				for _, r := range res.Rows {
					t.Logf("%d %s %s %s %s %s", r.Step, r.Actor, r.What, r.Service, r.Addresses, r.event())
				}
				t.Fatal(err)
			}
			check(t, res)
		})
	}
}

// TestExplorerRegressionsReplay replays the runs the explorer once broke
// an invariant with (shrunk, each file says how): they check only the
// invariants, which must hold on every one.
func TestExplorerRegressionsReplay(t *testing.T) {
	replayEach(t, "testdata/regressions/*.yaml", 1, func(*testing.T, *Result) {})
}

func TestScenariosReplay(t *testing.T) {
	replayEach(t, "scenarios/*.yaml", 10, func(t *testing.T, res *Result) {
		expects := 0
		for _, r := range res.Rows {
			if r.Actor == "expect" {
				expects++
			}
		}
		if expects == 0 {
			t.Fatal("the scenario checked nothing")
		}
	})
}

// A scenario every seed must survive: with the ledger on, lag and bursts
// never give one address to two Services.
const lagBurst = `
config: {cidr-global: 10.0.0.0/28}
steps:
  - lag: 3
  - create: {service: default/a}
  - create: {service: default/b}
  - create: {service: default/c}
  - create: {service: default/d}
  - create: {service: default/e}
  - settle: {}
`

// doubleAllocations replays scenario under seeds 1-20 with the flawed
// controller bad and with the real one, and returns how many seeds the
// flawed one double-allocated in. The real one must break nothing; check
// judges each of its results too.
func doubleAllocations(t *testing.T, scenario string, bad Options, check func(seed int64, res *Result)) int {
	t.Helper()
	sc, err := ParseScenario([]byte(scenario))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for seed := int64(1); seed <= 20; seed++ {
		bad.Seed = seed
		_, err := Run(sc, bad)
		var ie *InvariantError
		if errors.As(err, &ie) && strings.Contains(ie.Message, "held by two Services") {
			found++
			if len(ie.Services) != 2 || ie.Seed != seed {
				t.Errorf("the error should name two Services and the seed: %v", ie)
			}
		}
		res, err := Run(sc, Options{Seed: seed})
		if err != nil {
			t.Fatalf("seed %d with the real controller: %v", seed, err)
		}
		if check != nil {
			check(seed, res)
		}
	}
	return found
}

// lostAnswerBurst loses the answers to some writes while the cache lags:
// the writes land, the controller hears a time-out.
const lostAnswerBurst = `
config: {range-global: 10.0.0.1-10.0.0.6}
steps:
  - lag: 4
  - lose: 2
  - create: {service: default/a}
  - create: {service: default/b}
  - create: {service: default/c}
  - lose: 1
  - create: {service: default/d}
  - create: {service: default/e}
  - create: {service: default/f}
  - settle: {}
`

func TestSameSeedSameTrace(t *testing.T) {
	sc, err := Load("scenarios/09-lag-and-conflicts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err1 := Run(sc, Options{Seed: 42})
	b, err2 := Run(sc, Options{Seed: 42})
	if fmt.Sprint(err1) != fmt.Sprint(err2) || !reflect.DeepEqual(a.Rows, b.Rows) {
		t.Fatal("the same scenario and seed gave different traces")
	}
	var buf1, buf2 strings.Builder
	if err := WriteTable(&buf1, a); err != nil {
		t.Fatal(err)
	}
	_ = WriteTable(&buf2, b)
	if buf1.String() != buf2.String() {
		t.Fatal("the printed traces differ")
	}
}

func TestExpectFailureIsReported(t *testing.T) {
	sc, err := ParseScenario([]byte(`
config: {cidr-global: 10.0.0.0/30}
steps:
  - create: {service: default/a}
  - expect: {service: default/a, addresses: [10.0.0.2]}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(sc, Options{})
	var ee *ExpectError
	if !errors.As(err, &ee) || ee.Step != 2 || !strings.Contains(ee.Message, "10.0.0.1") {
		t.Fatalf("err = %v, want an ExpectError at step 2 naming the actual address", err)
	}
}

// The scenario example of docs/simulator.md (examples/scenario.yaml) is
// what users copy first: it must replay.
func TestReadmeScenarioExampleReplays(t *testing.T) {
	raw, err := os.ReadFile("../docs/simulator.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "## Scenario format")
	_, example, ok2 := strings.Cut(section, "```yaml\n")
	example, _, ok3 := strings.Cut(example, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no yaml example under \"## Scenario format\" in docs/simulator.md")
	}
	sc, err := ParseScenario([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	expects := 0
	for _, r := range res.Rows {
		if r.Actor == "expect" {
			expects++
		}
	}
	if expects != 2 {
		t.Fatalf("%d expects passed, want the example's 2", expects)
	}
}

// TestABareAddressIsToldToBeA32: wherever a bare address is given for a
// pool (the starting config, a config step, a plan, generate), the
// message says how to write it.
func TestABareAddressIsToldToBeA32(t *testing.T) {
	res := replayText(t, `
config: {cidr-global: 10.0.0.5}
steps:
  - create: {service: default/a}
  - config: {cidr-global: 10.0.0.0/30, cidr-x: "2001:db8::7"}
  - expect: {service: default/a, address: 10.0.0.1}
`)
	var messages []string
	for _, r := range res.Rows {
		if r.Reason == "InvalidConfig" {
			messages = append(messages, fmt.Sprintf("%d %s", r.Step, r.Message))
		}
	}
	want := []string{
		`0 parse cidr-global="10.0.0.5": entry "10.0.0.5": not a CIDR (ADDRESS/BITS) or a range (FROM-TO): for the one address, write 10.0.0.5/32 (key ignored)`,
		`2 parse cidr-x="2001:db8::7": entry "2001:db8::7": not a CIDR (ADDRESS/BITS) or a range (FROM-TO): for the one address, write 2001:db8::7/128 (key ignored)`,
	}
	if !reflect.DeepEqual(messages, want) {
		t.Errorf("InvalidConfig rows:\n%s\nwant\n%s", strings.Join(messages, "\n"), strings.Join(want, "\n"))
	}
	p, err := MakePlan(nil, nil, map[string]string{"cidr-global": "10.0.0.0/30"}, map[string]string{"cidr-global": "10.0.0.9"}, decide.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ConfigErrors) != 1 || !strings.Contains(p.ConfigErrors[0], "write 10.0.0.9/32") {
		t.Errorf("plan's config errors %q do not suggest 10.0.0.9/32", p.ConfigErrors)
	}
	if _, err := Generate(3, map[string]string{"red": "10.9.0.1"}); err == nil || !strings.Contains(err.Error(), "write 10.9.0.1/32") {
		t.Errorf("generate: err = %v, want one suggesting 10.9.0.1/32", err)
	}
}

// TestOldestWaitingFirstAfterARestartWhateverTheOrder: scenario 35 under
// interleavings that sync the Services in other orders after the start.
// The start rebuilds the set of waiting Services; with it left empty, a
// younger Service synced first takes the address (seed 3, say).
func TestOldestWaitingFirstAfterARestartWhateverTheOrder(t *testing.T) {
	sc, err := Load("scenarios/35-waiting-served-oldest-first-after-a-restart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for seed := int64(1); seed <= 40; seed++ {
		if _, err := Run(sc, Options{Seed: seed}); err != nil {
			t.Errorf("interleaving %d: %v", seed, err)
		}
	}
}
