package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// Load reads a scenario file; its Name defaults to the file's base name.
func Load(path string) (*Scenario, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sc, err := ParseScenario(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return sc, nil
}

// ParseScenario reads a scenario from YAML. It is strict about what it
// does not know (an unknown step or field is an error that names the step,
// its kind and the field) and lenient about natural spellings: null for
// an empty step value, conflict: N or conflict: NS/NAME, addresses: [] for
// "no address", numbers where strings are meant.
//
// The document is converted to JSON once, then every step is decoded on
// its own, so that each error knows where it is.
func ParseScenario(data []byte) (*Scenario, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %s%s", yamlError(err), tabHint(data))
	}
	if err := misplacedConfigKey(js); err != nil {
		return nil, err
	}
	top, err := fields(js, "a scenario: a mapping with config and steps", topFields)
	if err != nil {
		return nil, err
	}
	sc := &Scenario{}
	if raw, ok := top["name"]; ok {
		if sc.Name, err = asString(raw); err != nil {
			return nil, fmt.Errorf("name: %w", err)
		}
	}
	if raw, ok := top["config"]; ok {
		if err := misplacedTopField(raw); err != nil {
			return nil, err
		}
		if sc.Config, err = asMap(raw); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if raw, ok := top["seed"]; ok {
		seed, err := asInt(raw)
		if err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		sc.Seed = int64(seed)
	}
	if raw, ok := top["loadBalancerClass"]; ok {
		if sc.LoadBalancerClass, err = asString(raw); err != nil {
			return nil, fmt.Errorf("loadBalancerClass: %w", err)
		}
	}
	if raw, ok := top["steps"]; ok && !isNull(raw) {
		var steps []json.RawMessage
		if err := json.Unmarshal(raw, &steps); err != nil {
			return nil, fmt.Errorf("steps: want a list of steps, got %s", shown(raw))
		}
		for i, rs := range steps {
			st, kind, err := decodeStep(rs)
			if err != nil {
				if kind == "" {
					return nil, fmt.Errorf("step %d: %w", i+1, err)
				}
				return nil, fmt.Errorf("step %d (%s): %w", i+1, kind, err)
			}
			sc.Steps = append(sc.Steps, st)
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}

// tabHint explains a YAML error on a file whose indentation holds a tab:
// YAML indents with spaces only, and its own message rarely says "tab".
func tabHint(data []byte) string {
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if strings.Contains(indent, "\t") {
			return fmt.Sprintf(" (line %d is indented with a tab: YAML indents with spaces only; replace the tabs with spaces)", i+1)
		}
	}
	return ""
}

// misplacedConfigKey rejects a top-level key that is a ConfigMap key,
// saying where it belongs: it was meant to be indented under config:.
func misplacedConfigKey(js []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(js, &top) != nil {
		return nil // not a mapping: fields says so
	}
	for _, k := range sortedKeys(top) {
		if !slices.Contains(topFields, k) && isConfigMapKey(k) {
			return fmt.Errorf("%q is a ConfigMap key, not a field of the scenario: indent it under config: (as in config:\n  %s: ...)", k, k)
		}
	}
	return nil
}

// misplacedTopField rejects a field of the scenario found among the
// config's keys: steps (or seed, name, loadBalancerClass) indented under
// config: by mistake.
func misplacedTopField(config json.RawMessage) error {
	var m map[string]json.RawMessage
	if json.Unmarshal(config, &m) != nil {
		return nil // not a mapping: asMap says so
	}
	for _, k := range topFields {
		if _, ok := m[k]; ok && k != "config" {
			return fmt.Errorf("config: %q is indented under config:, but it is a field of the scenario, not a ConfigMap key: unindent it to the start of the line", k)
		}
	}
	return nil
}

// isConfigMapKey reports whether k is a key of the kubevip ConfigMap.
func isConfigMapKey(k string) bool {
	for _, prefix := range []string{allocator.KeyCIDRPrefix, allocator.KeyRangePrefix, allocator.KeyAllowSharePrefix, allocator.KeyInterfacePrefix} {
		if strings.HasPrefix(k, prefix) && len(k) > len(prefix) {
			return true
		}
	}
	return k == allocator.KeySearchOrder || k == allocator.KeySkipEndIPs
}

// yamlError says what the YAML parser found, without its prefixes.
func yamlError(err error) string {
	var parts []string
	for _, line := range strings.Split(err.Error(), "\n") {
		for _, prefix := range []string{"error converting YAML to JSON:", "yaml:", "unmarshal errors:"} {
			line = strings.TrimPrefix(strings.TrimSpace(line), prefix)
		}
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

// topFields are the fields of a scenario.
var topFields = []string{"name", "config", "seed", "loadBalancerClass", "steps"}

// decodeStep decodes one step and returns its kind (empty when unknown).
func decodeStep(raw json.RawMessage) (Step, string, error) {
	var st Step
	want := fmt.Sprintf("(want one of %s)", kindNames())
	var name string
	if json.Unmarshal(raw, &name) == nil {
		// A bare "- restart": the kinds that need no value.
		k, ok := kindNamed(name)
		switch {
		case ok && k.bare:
			return st, name, k.decode(&st, json.RawMessage("null"))
		case ok:
			return st, name, fmt.Errorf("needs a value, as in %s", k.example)
		}
		return st, "", unknownStep(name, want)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return st, "", fmt.Errorf("want a step such as create: {service: NS/NAME}, got %s", shown(raw))
	}
	var kinds, others []string
	for _, k := range sortedKeys(m) {
		if _, ok := kindNamed(k); ok {
			kinds = append(kinds, k)
		} else {
			others = append(others, k)
		}
	}
	switch {
	case len(kinds) == 0 && len(others) == 0:
		return st, "", fmt.Errorf("empty step %s", want)
	case len(kinds) == 0:
		return st, "", unknownStep(others[0], want)
	case len(kinds) > 1:
		return st, "", fmt.Errorf("a step needs exactly one of %s; found %s", kindNames(), strings.Join(kinds, " and "))
	case len(others) > 0:
		return st, kinds[0], fmt.Errorf("%q is not a step kind; should it be indented under %s?", others[0], kinds[0])
	}
	k, _ := kindNamed(kinds[0])
	return st, k.name, k.decode(&st, m[k.name])
}

// unknownStep is the error for a step of an unknown kind.
func unknownStep(name, want string) error {
	var names []string
	for _, k := range stepKinds() {
		names = append(names, k.name)
	}
	return fmt.Errorf("unknown step %q %s%s%s", name, want, didYouMean(name, names), yamlBoolHint(name))
}

// canonical returns the one of names s spells, ignoring case; else s.
func canonical(s string, names ...string) string {
	for _, n := range names {
		if strings.EqualFold(s, n) {
			return n
		}
	}
	return s
}

// fields decodes a JSON object (null is an empty one) and rejects the keys
// not in known, naming them. want describes the expected value.
func fields(raw json.RawMessage, want string, known []string) (map[string]json.RawMessage, error) {
	if isNull(raw) {
		return map[string]json.RawMessage{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("want %s, got %s", want, shown(raw))
	}
	for _, k := range sortedKeys(m) {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return nil, fmt.Errorf("unknown field %q (want %s)", k, want)
			}
			return nil, fmt.Errorf("unknown field %q (want one of %s)%s%s", k, strings.Join(known, ", "), didYouMean(k, known), yamlBoolHint(k))
		}
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func isString(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '"'
}

func isNumber(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

// asString reads a string; a number or a boolean is taken as its text
// (a ConfigMap value or an annotation is always a string), null as "".
func asString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case isNull(raw):
		return "", nil
	case isString(raw):
		var s string
		err := json.Unmarshal(raw, &s)
		return strings.TrimSpace(s), err
	case isNumber(raw), string(raw) == "true", string(raw) == "false":
		return string(raw), nil
	}
	return "", fmt.Errorf("want a string, got %s", shown(raw))
}

// asService reads namespace/name. YAML reads an unquoted y, yes, on (and
// n, no, off) as a boolean, which no Service name can be: say so.
func asService(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "true" || string(raw) == "false" {
		return "", fmt.Errorf("want namespace/name, got the boolean %s%s", raw, yamlBoolHint(string(raw)))
	}
	s, err := asString(raw)
	if err == nil && s == "" {
		return "", errors.New("want namespace/name, got nothing")
	}
	return s, err
}

// yamlBoolHint explains a true or false the user probably did not write.
func yamlBoolHint(s string) string {
	if s != "true" && s != "false" {
		return ""
	}
	return " (YAML reads an unquoted y, yes, on, n, no or off as a boolean: put quotes around it)"
}

// didYouMean suggests the one of names that s is most likely a misspelling
// of: the same but for case, or at most two edits away (one for names of
// up to four letters). It returns "" when no name is that close, or when
// two are equally close.
func didYouMean(s string, names []string) string {
	best, bestDist, tie := "", 3, false
	for _, n := range names {
		d := editDistance(strings.ToLower(s), strings.ToLower(n))
		if d > 0 && len(n) <= 4 {
			d++ // one edit turns a short name into too many others
		}
		switch {
		case d < bestDist:
			best, bestDist, tie = n, d, false
		case d == bestDist:
			tie = true
		}
	}
	if best == "" || tie {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the number of single-letter insertions, deletions,
// substitutions or swaps of neighbours that turn a into b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// asStrings reads a list of strings; a single string is a list of one, or
// of its comma-separated parts; null is nil.
func asStrings(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		s, err := asString(raw)
		if err != nil {
			return nil, fmt.Errorf("want a list, got %s", shown(raw))
		}
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("want a list, got %s", shown(raw))
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, err := asString(it)
		if err != nil {
			return nil, fmt.Errorf("want a list of strings, got %s", shown(raw))
		}
		out = append(out, s)
	}
	return out, nil
}

// asMap reads a map of strings (null values are ""); null is nil.
func asMap(raw json.RawMessage) (map[string]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("want a map of KEY: VALUE, got %s", shown(raw))
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		s, err := asString(m[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
}

// asInt reads a whole number (or a string holding one).
func asInt(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	var text string
	switch {
	case isNumber(raw):
		text = string(raw)
	case isString(raw):
		_ = json.Unmarshal(raw, &text)
		text = strings.TrimSpace(text)
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		if _, ferr := strconv.ParseFloat(text, 64); ferr == nil && isNumber(raw) {
			return 0, fmt.Errorf("want a whole number, got %s", shown(raw))
		}
		return 0, fmt.Errorf("want a number, got %s", shown(raw))
	}
	return n, nil
}

// asBool reads true or false (or a string holding one, or yes/no).
func asBool(raw json.RawMessage) (bool, error) {
	s, err := asString(raw)
	if err == nil && !isNull(raw) {
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			return true, nil
		case "false", "no", "off":
			return false, nil
		}
	}
	return false, fmt.Errorf("want true or false, got %s", shown(raw))
}

// shown quotes a value for an error: compact, and cut when long.
func shown(raw json.RawMessage) string {
	if isNull(raw) {
		return "nothing"
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		b.Reset()
		b.Write(raw)
	}
	s := b.String()
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
