package sim

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestEveryStepKindIsWholeAndDocumented: each kind of the table reads its
// own example back as a step of that kind, writes it back the same, and
// is a row of the step table of docs/simulator.md.
func TestEveryStepKindIsWholeAndDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/simulator.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(raw), "## Scenario format")
	seen := map[string]bool{}
	for _, k := range stepKinds() {
		t.Run(k.name, func(t *testing.T) {
			if seen[k.name] {
				t.Fatalf("two kinds are named %s", k.name)
			}
			seen[k.name] = true
			example := strings.ReplaceAll(k.example, "NS/NAME", "default/web")
			sc, err := ParseScenario([]byte("steps:\n  - " + example + "\n"))
			if err != nil {
				t.Fatalf("its example %q: %v", k.example, err)
			}
			if got := sc.Steps[0].Kind(); got != k.name {
				t.Fatalf("its example %q reads as a step of kind %q", k.example, got)
			}
			written, err := yaml.Marshal(sc)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseScenario(written)
			if err != nil || !reflect.DeepEqual(again, sc) {
				t.Fatalf("written back as\n%s\nit reads as %+v (%v)", written, again, err)
			}
			if !strings.Contains(section, "| `"+k.name+":") && !strings.Contains(section, "`"+k.name+": ") {
				t.Errorf("the scenario format of docs/simulator.md does not document %s", k.name)
			}
			// A bare list item is accepted exactly for the kinds that say so.
			_, err = ParseScenario([]byte("steps:\n  - " + k.name + "\n"))
			if k.bare != (err == nil) {
				t.Errorf("a bare - %s: err = %v, but bare is %v", k.name, err, k.bare)
			}
		})
	}
}

// TestAStepOfNoKindIsRefused: a Step built in Go with no value, or with
// two, is neither valid nor playable.
func TestAStepOfNoKindIsRefused(t *testing.T) {
	for _, st := range []Step{{}, {Settle: &struct{}{}, Restart: &struct{}{}}} {
		sc := &Scenario{Steps: []Step{{Settle: &struct{}{}}, st}}
		err := sc.Validate()
		if err == nil || !strings.Contains(err.Error(), "step 2: a step needs exactly one of create, update,") {
			t.Errorf("%+v: err = %v", st, err)
		}
		if _, err := Run(sc, Options{}); err == nil {
			t.Errorf("%+v: ran", st)
		}
	}
	if got, _ := json.Marshal(Step{}); string(got) != "{}" {
		t.Errorf("an empty step is written as %s", got)
	}
}

// TestEveryStepIsARow: the starting config is step 0, and every step,
// settle included, shows at least one row: the step numbers do not skip.
func TestEveryStepIsARow(t *testing.T) {
	res := replayText(t, `
config: {cidr-global: 10.0.0.0/30, cidr-x: 10.1.0.0/33}
steps:
  - settle:
  - create: {service: default/a}
  - settle:
  - lag: 1
  - settle:
  - expect: {service: default/a, address: 10.0.0.1}
`)
	steps := map[int]bool{}
	for _, r := range res.Rows {
		steps[r.Step] = true
	}
	for i := 0; i <= 6; i++ {
		if !steps[i] {
			t.Errorf("no row for step %d", i)
		}
	}
	first := res.Rows[0]
	if first.Step != 0 || first.Actor != "user" || first.What != "config" || first.Detail != "cidr-global=10.0.0.0/30 cidr-x=10.1.0.0/33" {
		t.Errorf("the first row is %+v, want the starting config at step 0", first)
	}
	var invalid []Row
	for _, r := range res.Rows {
		if r.Reason == "InvalidConfig" {
			invalid = append(invalid, r)
		}
	}
	if len(invalid) != 1 || invalid[0].Step != 0 || invalid[0].Detail != "cidr-x" || !strings.Contains(invalid[0].Message, `parse cidr-x="10.1.0.0/33"`) {
		t.Errorf("InvalidConfig rows %+v, want one at step 0 naming cidr-x", invalid)
	}
}
