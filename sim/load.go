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
		return nil, fmt.Errorf("not valid YAML: %s", yamlError(err))
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

var (
	topFields      = []string{"name", "config", "seed", "loadBalancerClass", "steps"}
	serviceFields  = []string{"service", "type", "ports", "ipFamilyPolicy", "ipFamilies", "loadBalancerIP", "loadBalancerClass", "annotations", "ingress"}
	refFields      = []string{"service"}
	conflictFields = []string{"count", "service"}
	expectFields   = []string{"service", "addresses", "address", "event", "reason", "noAddress"}
)

// noValue are the kinds whose value is empty: restart: {}, or a bare
// "- restart" list item.
var noValue = []string{"restart", "handover", "settle", "conflict"}

// decodeStep decodes one step and returns its kind (empty when unknown).
func decodeStep(raw json.RawMessage) (Step, string, error) {
	var st Step
	want := fmt.Sprintf("(want one of %s)", strings.Join(stepKinds, ", "))
	var name string
	if json.Unmarshal(raw, &name) == nil {
		// A bare "- restart": the kinds that need no value.
		switch {
		case slices.Contains(noValue, name):
			err := st.set(name, json.RawMessage("null"))
			return st, name, err
		case slices.Contains(stepKinds, name):
			return st, name, fmt.Errorf("needs a value, as in %s", example(name))
		}
		return st, "", fmt.Errorf("unknown step %q %s%s", name, want, yamlBoolHint(name))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return st, "", fmt.Errorf("want a step such as create: {service: NS/NAME}, got %s", shown(raw))
	}
	var kinds, others []string
	for _, k := range sortedKeys(m) {
		if slices.Contains(stepKinds, k) {
			kinds = append(kinds, k)
		} else {
			others = append(others, k)
		}
	}
	switch {
	case len(kinds) == 0 && len(others) == 0:
		return st, "", fmt.Errorf("empty step %s", want)
	case len(kinds) == 0:
		return st, "", fmt.Errorf("unknown step %q %s%s", others[0], want, yamlBoolHint(others[0]))
	case len(kinds) > 1:
		return st, "", fmt.Errorf("a step needs exactly one of %s; found %s", strings.Join(stepKinds, ", "), strings.Join(kinds, " and "))
	case len(others) > 0:
		return st, kinds[0], fmt.Errorf("%q is not a step kind; should it be indented under %s?", others[0], kinds[0])
	}
	kind := kinds[0]
	return st, kind, st.set(kind, m[kind])
}

// example shows how a kind is written, for errors.
func example(kind string) string {
	switch kind {
	case "create", "update", "delete":
		return kind + ": {service: NS/NAME}"
	case "config":
		return "config: {cidr-global: 192.168.0.200/29}"
	case "lag", "lose", "drop", "replicas":
		return kind + ": 2"
	case "expect":
		return "expect: {service: NS/NAME, addresses: [192.168.0.200]}"
	}
	return kind + ": {}"
}

// set decodes the value of a step of the given kind into st.
func (st *Step) set(kind string, raw json.RawMessage) error {
	var err error
	switch kind {
	case "create", "update":
		var spec *ServiceSpec
		if spec, err = decodeServiceSpec(raw, kind == "create"); err == nil {
			if kind == "create" {
				st.Create = spec
			} else {
				st.Update = spec
			}
		}
	case "delete":
		var ref string
		if ref, err = decodeRef(raw); err == nil {
			st.Delete = &Ref{Service: ref}
		}
	case "config":
		var data map[string]string
		if data, err = asMap(raw); err == nil {
			if data == nil {
				data = map[string]string{} // config: with nothing empties the ConfigMap
			}
			st.Config = data
		}
	case "restart", "handover", "settle":
		if _, err = fields(raw, "{} or nothing", nil); err == nil {
			switch kind {
			case "restart":
				st.Restart = &struct{}{}
			case "handover":
				st.Handover = &struct{}{}
			default:
				st.Settle = &struct{}{}
			}
		}
	case "lag", "lose", "drop", "replicas":
		var n int
		if (kind == "lose" || kind == "drop") && isNull(raw) {
			n = 1 // lose: or drop: with nothing after it, the next write
		} else if n, err = asInt(raw); err != nil {
			break
		}
		switch kind {
		case "lag":
			st.Lag = &n
		case "lose":
			st.Lose = &n
		case "drop":
			st.Drop = &n
		default:
			st.Replicas = &n
		}
	case "conflict":
		st.Conflict, err = decodeConflict(raw)
	case "expect":
		st.Expect, err = decodeExpect(raw)
	}
	return err
}

func decodeServiceSpec(raw json.RawMessage, create bool) (*ServiceSpec, error) {
	spec := &ServiceSpec{}
	if create && isString(raw) { // create: NS/NAME
		ref, err := asService(raw)
		spec.Service = ref
		return spec, err
	}
	m, err := fields(raw, "{service: NS/NAME, ...}", serviceFields)
	if err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "service":
			spec.Service, err = asService(v)
		case "type":
			spec.Type, err = asString(v)
			spec.Type = canonical(spec.Type, "LoadBalancer", "ClusterIP", "NodePort")
		case "ports":
			spec.Ports, err = asStrings(v)
		case "ipFamilyPolicy":
			spec.IPFamilyPolicy, err = asString(v)
			spec.IPFamilyPolicy = canonical(spec.IPFamilyPolicy, "SingleStack", "PreferDualStack", "RequireDualStack")
		case "ipFamilies":
			spec.IPFamilies, err = asStrings(v)
			for i, f := range spec.IPFamilies {
				spec.IPFamilies[i] = canonical(f, "IPv4", "IPv6")
			}
		case "loadBalancerIP":
			var ip string
			ip, err = asString(v)
			spec.LoadBalancerIP = &ip
		case "loadBalancerClass":
			var class string
			class, err = asString(v)
			spec.LoadBalancerClass = &class
		case "annotations":
			spec.Annotations, err = asMap(v)
		case "ingress":
			spec.Ingress, err = asStrings(v)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if _, ok := m["service"]; !ok {
		return nil, errors.New("service: missing (write service: NS/NAME)")
	}
	return spec, nil
}

func decodeRef(raw json.RawMessage) (string, error) {
	if isString(raw) { // delete: NS/NAME
		return asService(raw)
	}
	m, err := fields(raw, "{service: NS/NAME}", refFields)
	if err != nil {
		return "", err
	}
	v, ok := m["service"]
	if !ok {
		return "", errors.New("service: missing (write service: NS/NAME)")
	}
	ref, err := asService(v)
	if err != nil {
		return "", fmt.Errorf("service: %w", err)
	}
	return ref, nil
}

// decodeConflict reads conflict: (nothing), {}, N, NS/NAME, {count: N}
// or {service: NS/NAME} (with an optional count).
func decodeConflict(raw json.RawMessage) (*Conflict, error) {
	switch {
	case isNull(raw):
		return &Conflict{Count: 1}, nil
	case isString(raw):
		var s string
		_ = json.Unmarshal(raw, &s)
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return conflictCount(n)
		}
		ref, err := asService(raw)
		return &Conflict{Service: ref}, err
	case isNumber(raw):
		n, err := asInt(raw)
		if err != nil {
			return nil, err
		}
		return conflictCount(n)
	}
	m, err := fields(raw, "a count, NS/NAME, {count: N} or {service: NS/NAME}", conflictFields)
	if err != nil {
		return nil, err
	}
	c := &Conflict{}
	if v, ok := m["service"]; ok {
		if c.Service, err = asService(v); err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
	}
	if v, ok := m["count"]; ok {
		n, err := asInt(v)
		if err != nil {
			return nil, fmt.Errorf("count: %w", err)
		}
		if n < 1 {
			return nil, fmt.Errorf("count: want 1-1000, got %d", n)
		}
		c.Count = n
	} else if c.Service == "" {
		c.Count = 1 // conflict: {} is the next write
	}
	return c, nil
}

func conflictCount(n int) (*Conflict, error) {
	if n < 1 {
		return nil, fmt.Errorf("want a count of 1-1000, got %d", n)
	}
	return &Conflict{Count: n}, nil
}

// decodeExpect reads an expect; addresses: [] (or nothing) means no
// address, like noAddress: true; address: A is addresses: [A].
func decodeExpect(raw json.RawMessage) (*Expect, error) {
	m, err := fields(raw, "{service: NS/NAME, addresses: [...] | event: REASON | noAddress: true}", expectFields)
	if err != nil {
		return nil, err
	}
	e := &Expect{}
	none := false // addresses: [] was written
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "service":
			e.Service, err = asService(v)
		case "addresses":
			e.Addresses, err = asStrings(v)
			none = err == nil && len(e.Addresses) == 0
		case "address":
			var a string
			if a, err = asString(v); err == nil && a != "" {
				e.Addresses = append(e.Addresses, a)
			}
		case "event", "reason":
			var r string
			if r, err = asString(v); err == nil && e.Event != "" && e.Event != r {
				err = fmt.Errorf("%q, but event/reason is already %q", r, e.Event)
			}
			e.Event = r
		case "noAddress":
			var b bool
			b, err = asBool(v)
			e.NoAddress = &b
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if _, ok := m["service"]; !ok {
		return nil, errors.New("service: missing (write service: NS/NAME)")
	}
	_, both := m["address"]
	if _, ok := m["addresses"]; ok && both {
		return nil, errors.New("give address or addresses, not both")
	}
	if none {
		e.Addresses = nil
		if e.NoAddress != nil && !*e.NoAddress {
			return nil, errors.New("addresses: [] and noAddress: false contradict")
		}
		t := true
		e.NoAddress = &t
	}
	return e, nil
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
			return nil, fmt.Errorf("unknown field %q (want one of %s)%s", k, strings.Join(known, ", "), yamlBoolHint(k))
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
