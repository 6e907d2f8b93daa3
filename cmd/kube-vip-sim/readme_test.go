package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadmeSnippetRunsAsWritten: the simulator snippet of docs/simulator.md builds
// the binary where its commands then call it, every command is one the
// binary has, and the ones that need only the repository's files run.
func TestReadmeSnippetRunsAsWritten(t *testing.T) {
	raw, err := os.ReadFile("../../docs/simulator.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "# The simulator: `kube-vip-sim`")
	_, snippet, ok2 := strings.Cut(section, "```sh\n")
	snippet, _, ok3 := strings.Cut(snippet, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no sh snippet in docs/simulator.md")
	}
	built, ran := false, 0
	for _, line := range strings.Split(snippet, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, command := range strings.Split(line, "&&") {
			args := strings.Fields(command)
			switch {
			case len(args) == 0:
			case args[0] == "go":
				if strings.Join(args, " ") != "go build -o bin/ ./cmd/kube-vip-sim" {
					t.Errorf("%q: want go build -o bin/ ./cmd/kube-vip-sim", command)
				}
				built = true
			case args[0] != "bin/kube-vip-sim":
				t.Errorf("%q: runs %s, which the snippet did not build (bin/kube-vip-sim)", command, args[0])
			case !built:
				t.Errorf("%q: runs bin/kube-vip-sim before the snippet builds it", command)
			case len(args) < 2 || !slices.Contains([]string{"replay", "explore", "plan", "generate"}, args[1]):
				t.Errorf("%q: not a kube-vip-sim command", command)
			default:
				if runnable(t, args[1:]) {
					ran++
					if code, _, errOut := runCLI(t, expand(t, args[1:])...); code != 0 {
						t.Errorf("%q: exit %d: %s", command, code, errOut)
					}
				}
			}
		}
	}
	if !built || ran == 0 {
		t.Fatalf("the snippet builds the binary: %v; commands run: %d", built, ran)
	}
}

// runnable reports whether args name only files of the repository and
// write none.
func runnable(t *testing.T, args []string) bool {
	if slices.Contains(args, "--out") {
		return false
	}
	for _, a := range expand(t, args) {
		if strings.HasSuffix(a, ".yaml") {
			if _, err := os.Stat(a); err != nil {
				return false
			}
		}
	}
	return true
}

// expand expands globs as the shell would, from the repository's root.
func expand(t *testing.T, args []string) []string {
	var out []string
	for _, a := range args {
		if !strings.HasSuffix(a, ".yaml") {
			out = append(out, a)
			continue
		}
		matches, err := filepath.Glob(filepath.Join("..", "..", a))
		if err != nil || len(matches) == 0 {
			out = append(out, a)
			continue
		}
		out = append(out, matches...)
	}
	return out
}
