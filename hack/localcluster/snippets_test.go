package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snippet is one fenced sh, bash or yaml block of the documentation, with
// the marker on the line before it: <!-- snippet: KIND [ARG] -->.
type snippet struct {
	file string // relative to the checkout
	line int    // of the opening fence, 1-based
	lang string
	kind string // cluster, offline, real-cluster, output, quickstart, file, rehearsal, background
	args []string
	body string
}

func (s snippet) String() string { return fmt.Sprintf("%s:%d", s.file, s.line) }

// snippetKinds are the markers the test knows.
var snippetKinds = map[string]string{
	"cluster":      "runs, in order, on make run's cluster (with the controller), with KUBECONFIG set as the quick start sets it",
	"offline":      "runs without a cluster (KUBECONFIG names no file)",
	"quickstart":   "the README's quick start: make run, then QuickStart (run first on make run's cluster)",
	"rehearsal":    "runs, in order, on NO_CONTROLLER=1 make run's cluster; `rehearsal background` starts a command that runs until the end",
	"terminal":     "a command that runs until Ctrl-C in a terminal of its own (make run): the test starts the same itself",
	"real-cluster": "needs a real cluster: not run",
	"manual":       "needs what a test cannot have (root, Docker, another project's source): not run; the marker says what",
	"output":       "a transcript or an example of output: not run",
	"file":         "the content of the file named after it: compared with that file",
}

// checkout is the repository's root, from this package.
const checkout = "../.."

// docFiles are the documentation files whose snippets are checked.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(checkout, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range more {
		files = append(files, filepath.Join("docs", filepath.Base(f)))
	}
	return files
}

// readSnippets extracts every fenced sh, bash or yaml block of a file (a
// fence may be indented, as in a list); one without a known marker on the
// line before it is an error.
func readSnippets(file, text string) ([]snippet, []error) {
	var out []snippet
	var errs []error
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(trimmed, "```") {
			continue
		}
		lang := strings.TrimPrefix(trimmed, "```")
		indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " "))]
		start := i
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if lang != "sh" && lang != "bash" && lang != "yaml" {
			continue
		}
		s := snippet{file: file, line: start + 1, lang: lang, body: strings.Join(body, "\n") + "\n"}
		marker := ""
		if start > 0 {
			marker = strings.TrimSpace(lines[start-1])
		}
		fields := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(marker, "<!-- snippet:"), "-->"))
		if !strings.HasPrefix(marker, "<!-- snippet:") || !strings.HasSuffix(marker, "-->") || len(fields) == 0 {
			errs = append(errs, fmt.Errorf("%s: a ```%s block without a <!-- snippet: KIND --> marker on the line before it (kinds: %s)", s, lang, kindList()))
			continue
		}
		s.kind, s.args = fields[0], fields[1:]
		if _, ok := snippetKinds[s.kind]; !ok {
			errs = append(errs, fmt.Errorf("%s: unknown snippet kind %q (kinds: %s)", s, s.kind, kindList()))
			continue
		}
		if s.kind == "manual" && len(s.args) == 0 {
			errs = append(errs, fmt.Errorf("%s: <!-- snippet: manual WHAT --> says what it needs", s))
			continue
		}
		if s.kind == "file" && len(s.args) != 1 {
			errs = append(errs, fmt.Errorf("%s: <!-- snippet: file PATH --> names one file", s))
			continue
		}
		out = append(out, s)
	}
	return out, errs
}

func kindList() string {
	return "cluster, offline, quickstart, rehearsal [background], terminal, real-cluster, manual WHAT, output, file PATH"
}

// allSnippets reads every documentation file's snippets; unmarked blocks
// fail the test.
func allSnippets(t *testing.T) []snippet {
	t.Helper()
	var all []snippet
	for _, f := range docFiles(t) {
		raw, err := os.ReadFile(filepath.Join(checkout, f))
		if err != nil {
			t.Fatal(err)
		}
		s, errs := readSnippets(f, string(raw))
		for _, err := range errs {
			t.Error(err)
		}
		all = append(all, s...)
	}
	return all
}

// TestReadmeQuickStartIsWhatMakeRunPrints: the README's quick start, in
// its first 40 lines, is `make run` then QuickStart, and make run's banner
// prints QuickStart as it is.
func TestReadmeQuickStartIsWhatMakeRunPrints(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(checkout, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	snippets, errs := readSnippets("README.md", string(raw))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var qs []snippet
	for _, s := range snippets {
		if s.kind == "quickstart" {
			qs = append(qs, s)
		}
	}
	if len(qs) != 2 {
		t.Fatalf("the README has %d quickstart blocks, want 2 (make run; QuickStart)", len(qs))
	}
	if qs[0].body != "make run\n" {
		t.Errorf("%s: the quick start's first block is %q, want %q", qs[0], qs[0].body, "make run\n")
	}
	if qs[1].body != QuickStart {
		t.Errorf("%s: the quick start is\n%s\nbut make run prints (QuickStart)\n%s", qs[1], qs[1].body, QuickStart)
	}
	if end := qs[1].line + strings.Count(qs[1].body, "\n"); end > 40 {
		t.Errorf("%s: the quick start ends on line %d of the README, want it within the first 40", qs[1], end+1)
	}
	b := banner(defaultOptions())
	for _, line := range strings.Split(strings.TrimSuffix(QuickStart, "\n"), "\n") {
		if !strings.Contains(b, "    "+line+"\n") {
			t.Errorf("make run's banner does not print %q:\n%s", line, b)
		}
	}
}
