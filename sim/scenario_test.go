package sim

import (
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestParseLenientSpellings(t *testing.T) {
	yes, no := true, false
	empty := ""
	for _, tc := range []struct {
		name string
		step string // one step, as written under steps:
		want Step
	}{
		{"conflict: {}", `conflict: {}`, Step{Conflict: &Conflict{Count: 1}}},
		{"conflict: null", `conflict:`, Step{Conflict: &Conflict{Count: 1}}},
		{"conflict: N", `conflict: 2`, Step{Conflict: &Conflict{Count: 2}}},
		{"conflict: \"N\"", `conflict: "3"`, Step{Conflict: &Conflict{Count: 3}}},
		{"conflict: NS/NAME", `conflict: default/web`, Step{Conflict: &Conflict{Service: "default/web"}}},
		{"conflict: {count}", `conflict: {count: 4}`, Step{Conflict: &Conflict{Count: 4}}},
		{"conflict: {service}", `conflict: {service: default/web}`, Step{Conflict: &Conflict{Service: "default/web"}}},
		{"conflict: {service, count}", `conflict: {service: default/web, count: 2}`, Step{Conflict: &Conflict{Service: "default/web", Count: 2}}},
		{"bare conflict", `conflict`, Step{Conflict: &Conflict{Count: 1}}},
		{"restart: null", `restart:`, Step{Restart: &struct{}{}}},
		{"restart: {}", `restart: {}`, Step{Restart: &struct{}{}}},
		{"bare restart", `restart`, Step{Restart: &struct{}{}}},
		{"settle: null", `settle:`, Step{Settle: &struct{}{}}},
		{"handover: null", `handover: ~`, Step{Handover: &struct{}{}}},
		{"lag as a string", `lag: "2"`, Step{Lag: new(2)}},
		{"config: null empties the data", `config:`, Step{Config: map[string]string{}}},
		{"config values that YAML reads as others", `config: {allow-share-global: true, cidr-global: 10.0.0.0/24}`,
			Step{Config: map[string]string{"allow-share-global": "true", "cidr-global": "10.0.0.0/24"}}},
		{"expect addresses: []", `expect: {service: a/b, addresses: []}`, Step{Expect: &Expect{Service: "a/b", NoAddress: &yes}}},
		{"expect noAddress: false", `expect: {service: a/b, noAddress: false}`, Step{Expect: &Expect{Service: "a/b", NoAddress: &no}}},
		{"expect address", `expect: {service: a/b, address: 10.0.0.1}`, Step{Expect: &Expect{Service: "a/b", Addresses: []string{"10.0.0.1"}}}},
		{"expect addresses as one string", `expect: {service: a/b, addresses: "10.0.0.1,2001:db8::1"}`,
			Step{Expect: &Expect{Service: "a/b", Addresses: []string{"10.0.0.1", "2001:db8::1"}}}},
		{"expect reason", `expect: {service: a/b, reason: AllocationFailed}`, Step{Expect: &Expect{Service: "a/b", Event: "AllocationFailed"}}},
		{"expect event and kind", `expect: {service: a/b, event: AllocationFailed, kind: PoolExhausted}`,
			Step{Expect: &Expect{Service: "a/b", Event: "AllocationFailed", Kind: "PoolExhausted"}}},
		{"expect kind alone, in any case", `expect: {service: a/b, kind: noPool}`, Step{Expect: &Expect{Service: "a/b", Event: "AllocationFailed", Kind: "NoPool"}}},
		{"expect reason and kind", `expect: {service: a/b, reason: AllocationFailed, kind: Conflict}`,
			Step{Expect: &Expect{Service: "a/b", Event: "AllocationFailed", Kind: "Conflict"}}},
		{"expect the ConfigMap", `expect: {configmap: true, event: InvalidConfig, key: cidr-x}`,
			Step{Expect: &Expect{ConfigMap: true, Event: "InvalidConfig", Key: "cidr-x"}}},
		{"expect the ConfigMap, any key", `expect: {configmap: yes}`, Step{Expect: &Expect{ConfigMap: true, Event: "InvalidConfig"}}},
		{"expect addresses and noAddress: false agree", `expect: {service: a/b, addresses: [10.0.0.1], noAddress: false}`,
			Step{Expect: &Expect{Service: "a/b", Addresses: []string{"10.0.0.1"}, NoAddress: &no}}},
		{"create NS/NAME", `create: default/web`, Step{Create: &ServiceSpec{Service: "default/web"}}},
		{"delete NS/NAME", `delete: default/web`, Step{Delete: &Ref{Service: "default/web"}}},
		{"delete the ConfigMap", `delete: {configmap: yes}`, Step{Delete: &Ref{ConfigMap: true}}},
		{"ports as numbers, names in any case", `create: {service: a/b, ports: [80, 53/udp], type: loadbalancer, ipFamilyPolicy: preferdualstack, ipFamilies: [ipv6, IPv4]}`,
			Step{Create: &ServiceSpec{Service: "a/b", Ports: []string{"80", "53/udp"}, Type: "LoadBalancer", IPFamilyPolicy: "PreferDualStack", IPFamilies: []string{"IPv6", "IPv4"}}}},
		{"update: empty ports and a cleared class", `update: {service: a/b, ports: [], loadBalancerClass: ""}`,
			Step{Update: &ServiceSpec{Service: "a/b", Ports: []string{}, LoadBalancerClass: &empty}}},
		{"annotation values: null removes, yes is true", `update: {service: a/b, annotations: {kube-vip.io/ignore: yes, x: ~}}`,
			Step{Update: &ServiceSpec{Service: "a/b", Annotations: map[string]string{"kube-vip.io/ignore": "true", "x": ""}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := ParseScenario([]byte("steps:\n  - " + tc.step + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(sc.Steps) != 1 || !reflect.DeepEqual(sc.Steps[0], tc.want) {
				got, _ := yaml.Marshal(sc.Steps)
				want, _ := yaml.Marshal(tc.want)
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestParseErrorsNameTheStepAndTheKind(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown step", "steps:\n  - create: {service: a/b}\n  - settle: {}\n  - frobnicate: {x: 1}\n",
			`step 3: unknown step "frobnicate" (want one of create, update, delete, config, restart, stop, lag, lose, drop, conflict, replicas, handover, active, sync, settle, expect)`},
		{"unknown field", "steps:\n  - settle:\n  - create: {service: a/b, colour: red}\n",
			`step 2 (create): unknown field "colour" (want one of service, type, ports,`},
		{"not a number", "steps:\n  - settle:\n  - settle:\n  - settle:\n  - lag: abc\n", `step 4 (lag): want a number, got "abc"`},
		{"a misspelt event reason", "steps: [{expect: {service: a/b, event: AllocationFailure}}]",
			`step 1 (expect): event "AllocationFailure": not a reason the controller records on a Service (want AddressAssigned, AllocationFailed, AddressOutsidePool or AddressReleased)`},
		{"a ConfigMap's event", "steps: [{expect: {service: a/b, event: InvalidConfig}}]",
			`step 1 (expect): event InvalidConfig: that is recorded on the ConfigMap, not on a Service: write expect: {configmap: true, event: InvalidConfig, key: KEY}`},
		{"a kind of another event", "steps: [{expect: {service: a/b, event: AddressAssigned, kind: NoPool}}]",
			"step 1 (expect): kind NoPool: a kind of AllocationFailed; event is AddressAssigned"},
		{"an unknown kind", "steps: [{expect: {service: a/b, kind: PoolExhaused}}]",
			`step 1 (expect): kind "PoolExhaused": not a kind of AllocationFailed (want one of PoolExhausted, NoPool, Conflict, FamilyUnavailable, InvalidRequest); did you mean "PoolExhausted"?`},
		{"a key of a Service", "steps: [{expect: {service: a/b, event: AllocationFailed, key: cidr-a}}]", `step 1 (expect): key "cidr-a": only the ConfigMap's Events`},
		{"a Service and the ConfigMap", "steps: [{expect: {service: a/b, configmap: true}}]", `step 1 (expect): service "a/b" and configmap: true: give one`},
		{"the ConfigMap's addresses", "steps: [{expect: {configmap: true, noAddress: true}}]", "step 1 (expect): configmap: true: the ConfigMap has no addresses"},
		{"the ConfigMap's kind", "steps: [{expect: {configmap: true, kind: NoPool}}]", "step 1 (expect): kind NoPool: a kind of AllocationFailed, which is recorded on a Service"},
		{"the ConfigMap's other event", "steps: [{expect: {configmap: true, event: AddressAssigned}}]", `step 1 (expect): event "AddressAssigned": the controller records only InvalidConfig, UnknownConfigKey, ConfigNotice on the ConfigMap`},
		{"delete configmap: false", "steps: [{delete: {configmap: false}}]", "step 1 (delete): configmap: false: write delete: {configmap: true} to delete the ConfigMap"},
		{"delete a Service and the ConfigMap", "steps: [{delete: {configmap: true, service: a/b}}]", `step 1 (delete): service "a/b" and configmap: true: give one`},
		{"a misspelt ConfigMap event", "steps: [{expect: {configmap: true, event: UnknownConfigKeys}}]", `did you mean "UnknownConfigKey"?`},
		{"a ConfigMap notice of a Service", "steps: [{expect: {service: a/b, event: ConfigNotice}}]",
			`step 1 (expect): event ConfigNotice: that is recorded on the ConfigMap, not on a Service`},
		{"a misspelt configmap", "steps: [{expect: {configMap: true}}]", `step 1 (expect): unknown field "configMap" (want one of service, configmap,`},
		{"not a whole number", "steps: [{replicas: 1.5}]", `step 1 (replicas): want a whole number, got 1.5`},
		{"unknown top-level field", "config: {}\nstep:\n  - settle: {}\n", `unknown field "step" (want one of name, config, seed, loadBalancerClass, steps)`},
		{"two kinds in a step", `steps: [{create: {service: a/b}, delete: {service: a/b}}]`, "step 1: a step needs exactly one of"},
		{"a field beside the kind", "steps:\n  - create:\n    service: a/b\n", `step 1 (create): "service" is not a step kind; should it be indented under create?`},
		{"an empty step", "steps:\n  - {}\n", "step 1: empty step"},
		{"a kind without its value", "steps:\n  - create\n", "step 1 (create): needs a value, as in create: {service: NS/NAME}"},
		{"a step that is a number", "steps:\n  - 7\n", "step 1: want a step such as create: {service: NS/NAME}, got 7"},
		{"a YAML boolean for a name", "steps:\n  - delete: {service: yes}\n", "step 1 (delete): service: want namespace/name, got the boolean true (YAML reads an unquoted y, yes, on"},
		{"a YAML boolean as a step", "steps:\n  - on: {}\n", `step 1: unknown step "true"`},
		{"bad service name", `steps: [{create: {service: nonamespace}}]`, `step 1 (create): service "nonamespace": write it as namespace/name`},
		{"missing service", `steps: [{expect: {event: AddressAssigned}}]`, "step 1 (expect): service: missing (write service: NS/NAME, or configmap: true for the ConfigMap)"},
		{"bad port", `steps: [{create: {service: a/b, ports: [80/ICMP]}}]`, "step 1 (create): ports: port \"80/ICMP\": protocol"},
		{"ports not a list", `steps: [{create: {service: a/b, ports: {a: 1}}}]`, `step 1 (create): ports: want a list, got {"a":1}`},
		{"bad policy", `steps: [{create: {service: a/b, ipFamilyPolicy: Mostly}}]`, "ipFamilyPolicy"},
		{"empty expect", `steps: [{expect: {service: a/b}}]`, "step 1 (expect): give addresses, event or noAddress"},
		{"bad expect address", `steps: [{expect: {service: a/b, addresses: [nope]}}]`, "not an IP"},
		{"addresses contradict noAddress", `steps: [{expect: {service: a/b, addresses: [10.0.0.1], noAddress: true}}]`, "addresses and noAddress: true contradict"},
		{"no addresses contradict noAddress: false", `steps: [{expect: {service: a/b, addresses: [], noAddress: false}}]`, "addresses: [] and noAddress: false contradict"},
		{"address and addresses", `steps: [{expect: {service: a/b, address: 10.0.0.1, addresses: [10.0.0.1]}}]`, "give address or addresses, not both"},
		{"noAddress not a boolean", `steps: [{expect: {service: a/b, noAddress: maybe}}]`, `noAddress: want true or false, got "maybe"`},
		{"restart with a value", `steps: [{restart: 3}]`, "step 1 (restart): want {} or nothing, got 3"},
		{"restart with a field", `steps: [{restart: {now: true}}]`, `step 1 (restart): unknown field "now"`},
		{"conflict count 0", `steps: [{conflict: 0}]`, "step 1 (conflict): want a count of 1-1000, got 0"},
		{"conflict of a bad name", `steps: [{conflict: web}]`, `step 1 (conflict): service "web": write it as namespace/name`},
		{"bad lag", `steps: [{lag: -1}]`, "step 1 (lag): lag -1: must be 0-1000"},
		{"three replicas", `steps: [{replicas: 3}]`, "step 1 (replicas): replicas 3"},
		{"steps not a list", `steps: {create: {service: a/b}}`, "steps: want a list of steps"},
		{"a misspelt step kind", "steps:\n  - crate: {service: a/b}\n", `step 1: unknown step "crate" (want one of create,`},
		{"a misspelt step kind is named", "steps:\n  - crate: {service: a/b}\n", `; did you mean "create"?`},
		{"a swap of letters", "steps:\n  - setlte:\n", `did you mean "settle"?`},
		{"a kind in the wrong case", "steps:\n  - Expect: {service: a/b, noAddress: true}\n", `did you mean "expect"?`},
		{"a misspelt bare kind", "steps:\n  - restrat\n", `unknown step "restrat" (want one of`},
		{"a misspelt bare kind is named", "steps:\n  - restrat\n", `did you mean "restart"?`},
		{"a misspelt field", "steps:\n  - create: {service: a/b, prots: [80]}\n", `unknown field "prots" (want one of service, type, ports,`},
		{"a misspelt field is named", "steps:\n  - create: {service: a/b, prots: [80]}\n", `did you mean "ports"?`},
		{"a ConfigMap key not indented under config", "config:\ncidr-global: 10.0.0.0/24\nsteps: []\n",
			`"cidr-global" is a ConfigMap key, not a field of the scenario: indent it under config:`},
		{"a ConfigMap key after the steps", "steps:\n  - settle:\nallow-share-global: \"true\"\n", `"allow-share-global" is a ConfigMap key`},
		{"search-order at the top", "search-order: desc\n", `"search-order" is a ConfigMap key`},
		{"steps indented under config", "config:\n  cidr-global: 10.0.0.0/24\n  steps:\n    - create: {service: a/b}\n",
			`config: "steps" is indented under config:, but it is a field of the scenario, not a ConfigMap key: unindent it`},
		{"steps indented under config, as a list at the same indent", "config:\n  cidr-global: 10.0.0.0/24\n  steps:\n  - create: {service: a/b}\n",
			`config: "steps" is indented under config:`},
		{"seed indented under config", "config:\n  cidr-global: 10.0.0.0/24\n  seed: 3\n", `config: "seed" is indented under config:`},
		{"a tab in the indentation", "config:\n\tcidr-global: 10.0.0.0/24\n", "line 2 is indented with a tab: YAML indents with spaces only"},
		{"a tab in a step's indentation", "steps:\n  - create:\n  \t  service: a/b\n", "line 3 is indented with a tab"},
		{"a tab after spaces", "config:\n  cidr-global: 1\n\tsteps: []\n", "not valid YAML: line 3: found a tab character that violates indentation (line 3 is indented with a tab"},
		{"bad YAML", "steps:\n  - create: {service: a/b\n", "not valid YAML"},
		{"a line of nothing but a tab", "steps:\n\t\n  - create: {service: a/b}\n", "line 2 is indented with a tab"},
		{"duplicate key", "config: {}\nconfig: {}\n", "not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant one containing %q", err, tc.want)
			}
			for _, jargon := range []string{"json:", "unmarshal", "Go value", "struct"} {
				if strings.Contains(err.Error(), jargon) {
					t.Fatalf("err = %v: %q is jargon", err, jargon)
				}
			}
		})
	}
}

// allSyntax uses every kind of step and every lenient spelling.
const allSyntax = `
name: all
seed: 3
loadBalancerClass: ""
config: {cidr-global: 10.0.0.0/28, allow-share-global: yes}
steps:
  - create: {service: default/a, ports: [80/TCP, 53], ipFamilyPolicy: SingleStack, ipFamilies: [IPv4], annotations: {x: "1"}}
  - create: default/b
  - update: {service: default/b, ports: [], loadBalancerIP: "", loadBalancerClass: ""}
  - lag: 2
  - conflict:
  - conflict: 2
  - conflict: default/a
  - conflict: {service: default/a, count: 2}
  - restart:
  - replicas: 2
  - handover:
  - replicas: 1
  - settle
  - config:
  - config: {cidr-global: 10.0.0.0/28}
  - expect: {service: default/a, noAddress: false}
  - expect: {service: default/b, address: 10.0.0.2}
  - delete: default/b
  - create: {service: default/c, type: ClusterIP}
  - expect: {service: default/c, addresses: []}
`

func TestParsedScenariosWriteBackTheSame(t *testing.T) {
	sc, err := ParseScenario([]byte(allSyntax))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseScenario(raw)
	if err != nil {
		t.Fatalf("the written scenario does not parse: %v\n%s", err, raw)
	}
	if !reflect.DeepEqual(sc, again) {
		t.Fatalf("written and read back, the scenario changed:\n%s", raw)
	}
	if _, err := Run(again, Options{}); err != nil {
		t.Fatalf("the scenario fails: %v", err)
	}
}

func TestExpectNoAddress(t *testing.T) {
	const base = "config: {cidr-global: 10.0.0.0/30}\nsteps:\n  - create: {service: default/a}\n  - create: {service: default/off, type: ClusterIP}\n"
	for _, tc := range []struct {
		expect string
		fails  string // empty: passes
	}{
		{`{service: default/a, noAddress: false}`, ""},
		{`{service: default/off, noAddress: false}`, "has no address, want one"},
		{`{service: default/off, addresses: []}`, ""},
		{`{service: default/a, addresses: []}`, `has address "10.0.0.1", want none`},
		{`{service: default/off, noAddress: true}`, ""},
		{`{service: default/a, address: 10.0.0.1}`, ""},
		{`{service: default/a, address: 10.0.0.2}`, `addresses "10.0.0.1", want "10.0.0.2"`},
	} {
		t.Run(tc.expect, func(t *testing.T) { checkExpect(t, base, tc.expect, tc.fails) })
	}
}

func TestConflictStepsFailTheNextWrites(t *testing.T) {
	for _, tc := range []struct {
		step      string
		conflicts map[string]int // injected 409s per Service
	}{
		{`conflict: {}`, map[string]int{"default/a": 1}},
		{`conflict:`, map[string]int{"default/a": 1}},
		{`conflict: 2`, map[string]int{"default/a": 2}}, // its retry is the second write
		{`conflict: default/b`, map[string]int{"default/b": 1}},
		{`conflict: {service: default/b, count: 2}`, map[string]int{"default/b": 2}},
	} {
		t.Run(tc.step, func(t *testing.T) {
			res := replayText(t, "config: {cidr-global: 10.0.0.0/29}\nsteps:\n  - "+tc.step+
				"\n  - create: {service: default/a}\n  - settle:\n  - create: {service: default/b}\n  - expect: {service: default/b, noAddress: false}\n")
			got := map[string]int{}
			for _, r := range res.Rows {
				if r.What == "conflict" && r.Message == "injected 409" {
					got[r.Service]++
				}
			}
			if !reflect.DeepEqual(got, tc.conflicts) {
				t.Fatalf("injected conflicts %v, want %v", got, tc.conflicts)
			}
		})
	}
}

func TestScalingDownKeepsTheLeader(t *testing.T) {
	res := replayText(t, `
config: {cidr-global: 10.0.0.0/28}
steps:
  - replicas: 2
  - create: {service: default/a}
  - handover:
  - create: {service: default/b}
  - replicas: 1
  - create: {service: default/c}
  - settle:
  - replicas: 2
  - handover:
  - create: {service: default/d}
  - expect: {service: default/d, address: 10.0.0.4}
`)
	// Who wrote each Service's address, and what the user's steps said.
	writer := map[string]string{}
	var details []string
	for _, r := range res.Rows {
		if r.What == "write" {
			writer[r.Service] = r.Actor
		}
		if r.Actor == "user" && (r.What == "replicas" || r.What == "handover") {
			details = append(details, r.Detail)
		}
	}
	want := map[string]string{"default/a": "controller-0", "default/b": "controller-1", "default/c": "controller-1", "default/d": "controller-0"}
	if !reflect.DeepEqual(writer, want) {
		t.Errorf("writers %v, want %v", writer, want)
	}
	wantDetails := []string{"2, leader is controller-0", "leader is controller-1", "1, leader is controller-1", "2, leader is controller-1", "leader is controller-0"}
	if !reflect.DeepEqual(details, wantDetails) {
		t.Errorf("steps said %q, want %q", details, wantDetails)
	}
}

func TestAnEventIsShownOnceUntilItChanges(t *testing.T) {
	// default/outside carries an address outside every pool: the write
	// that labels it and every hold after it (the config change requeues
	// it) say AddressOutsidePool with the same message, which the
	// controller records once. A new controller process says it again.
	res := replayText(t, `
config: {cidr-global: 10.0.0.0/29}
steps:
  - create: {service: default/outside, annotations: {kube-vip.io/loadbalancerIPs: 203.0.113.5}}
  - settle:
  - config: {cidr-global: 10.0.0.0/30}
  - settle:
  - expect: {service: default/outside, event: AddressOutsidePool}
  - restart:
  - settle:
`)
	var steps []int
	for _, r := range res.Rows {
		if r.Reason == "AddressOutsidePool" && r.Actor != "expect" {
			steps = append(steps, r.Step)
		}
	}
	if !reflect.DeepEqual(steps, []int{1, 6}) {
		t.Fatalf("AddressOutsidePool shown at steps %v, want once at step 1 and once after the restart (step 6)", steps)
	}
}

// replayText parses a scenario and runs it, failing the test on any error.
func replayText(t *testing.T, text string) *Result {
	t.Helper()
	sc, err := ParseScenario([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDidYouMeanOnlyWhenOneNameIsClose(t *testing.T) {
	names := []string{"create", "update", "delete", "lag", "lose", "drop", "settle", "plate", "place"}
	for _, tc := range []struct{ typed, want string }{
		{"crate", "create"},
		{"delte", "delete"},
		{"UPDATE", "update"},
		{"lga", "lag"},
		{"dorp", "drop"},
		{"frobnicate", ""},
		{"crates", "create"},
		{"crayons", ""}, // three edits from create
		{"lo", ""},      // two edits from lag and lose: too many for a short name
		{"plase", ""},   // one edit from plate and from place: which?
	} {
		got := didYouMean(tc.typed, names)
		want := ""
		if tc.want != "" {
			want = `; did you mean "` + tc.want + `"?`
		}
		if got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", tc.typed, got, want)
		}
	}
}

func TestExpectKindAndConfigMap(t *testing.T) {
	const base = `
config: {cidr-global: 10.0.0.1/32, cidr-x: 10.1.0.5, range-y: 10.2.0.1-10.2.0.2}
steps:
  - create: {service: default/a}
  - create: {service: default/b}
  - config: {cidr-global: 10.0.0.1/32, cidr-x: 10.1.0.5, range-y: 10.2.0.9-10.2.0.1}
`
	for _, tc := range []struct {
		expect string
		fails  string // empty: passes
	}{
		{`{service: default/b, event: AllocationFailed, kind: PoolExhausted}`, ""},
		{`{service: default/b, kind: PoolExhausted}`, ""},
		{`{service: default/b, event: AllocationFailed}`, ""},
		{`{service: default/b, kind: NoPool}`, "step 4: expect default/b: no AllocationFailed (NoPool) event (events [AllocationFailed (PoolExhausted)"},
		{`{service: default/a, kind: PoolExhausted}`, "no AllocationFailed (PoolExhausted) event (events [AddressAssigned])"},
		{`{configmap: true, event: InvalidConfig, key: cidr-x}`, ""},
		{`{configmap: true, key: range-y}`, ""},
		{`{configmap: true}`, ""},
		{`{configmap: true, key: cidr-global}`, "step 4: expect the ConfigMap: no InvalidConfig event for key cidr-global (shown for cidr-x, range-y)"},
	} {
		t.Run(tc.expect, func(t *testing.T) { checkExpect(t, base, tc.expect, tc.fails) })
	}
	// No InvalidConfig at all.
	sc, err := ParseScenario([]byte("config: {cidr-global: 10.0.0.0/30}\nsteps:\n  - expect: {configmap: true, key: cidr-global}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(sc, Options{}); err == nil || !strings.Contains(err.Error(), "no InvalidConfig event for key cidr-global (none shown)") {
		t.Fatalf("err = %v", err)
	}
}

// TestNotEveryTabOrKeyIsAMistake: a tab that is not indentation, a
// ConfigMap key inside config, and a key of a config step parse.
func TestNotEveryTabOrKeyIsAMistake(t *testing.T) {
	sc, err := ParseScenario([]byte("config:\n  cidr-global: 10.0.0.0/30\t# a tab before a comment\n  search-order: desc\nsteps:\n  - config: {cidr-global: 10.0.0.0/29}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Config["search-order"] != "desc" || sc.Steps[0].Config["cidr-global"] != "10.0.0.0/29" {
		t.Fatalf("read %+v", sc)
	}
}

// checkExpect replays base with one more expect step: it must pass when
// fails is empty, else fail with a message containing fails.
func checkExpect(t *testing.T, base, expect, fails string) {
	t.Helper()
	sc, err := ParseScenario([]byte(base + "  - expect: " + expect + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(sc, Options{})
	switch {
	case fails == "" && err != nil:
		t.Fatalf("want a pass, got %v", err)
	case fails != "" && (err == nil || !strings.Contains(err.Error(), fails)):
		t.Fatalf("err = %v, want one containing %q", err, fails)
	}
}
