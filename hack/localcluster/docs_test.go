package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDocumentationSnippetsRunAsWritten runs every command of README.md
// and docs/*.md as a reader would (issue 18): each fenced sh, bash or yaml
// block carries a marker (see snippetKinds); `offline` blocks run without
// a cluster, `cluster` blocks in order on make run's cluster (started by
// the code make run runs, the controller being the binary built from this
// checkout) after the README's quick start, `rehearsal` blocks in order on
// NO_CONTROLLER=1 make run's cluster, with kubectl of the control plane's
// version (hack/kubectl.sh). Each runs with bash -e -o pipefail in a
// directory that looks like the checkout (its files linked in, bin/ and
// .run/ its own). `file` blocks must equal the file they name.
func TestDocumentationSnippetsRunAsWritten(t *testing.T) {
	snippets := allSnippets(t)
	if t.Failed() {
		t.FailNow()
	}
	byKind := map[string][]snippet{}
	for _, s := range snippets {
		byKind[s.kind] = append(byKind[s.kind], s)
	}
	for _, s := range byKind["file"] {
		raw, err := os.ReadFile(filepath.Join(checkout, s.args[0]))
		if err != nil {
			t.Errorf("%s: names %s: %v", s, s.args[0], err)
		} else if string(raw) != s.body {
			t.Errorf("%s: the block is not the content of %s (copy the file into the block, or the block into the file)", s, s.args[0])
		}
	}
	if len(byKind["cluster"]) == 0 || len(byKind["offline"]) == 0 || len(byKind["rehearsal"]) == 0 {
		t.Fatalf("found %d cluster, %d offline and %d rehearsal snippets: the markers are gone?",
			len(byKind["cluster"]), len(byKind["offline"]), len(byKind["rehearsal"]))
	}

	kubectl := buildKubectl(t)
	work := workDir(t)
	path := filepath.Dir(kubectl) + string(os.PathListSeparator) + os.Getenv("PATH")

	t.Run("offline", func(t *testing.T) {
		env := []string{"PATH=" + path, "KUBECONFIG=" + filepath.Join(work, "no-cluster-here")}
		for _, s := range byKind["offline"] {
			runSnippet(t, s, work, env)
		}
	})

	t.Run("cluster", func(t *testing.T) {
		opts := testOptions(t, work)
		_, out := startCluster(t, opts)
		env := []string{"PATH=" + path, "KUBECONFIG=", "METRICS_ADDRESS=" + opts.metricsAddr}
		// The quick start exports KUBECONFIG itself.
		got := runSnippet(t, snippet{file: "README.md", kind: "quickstart", lang: "sh", body: QuickStart}, work, env)
		if !strings.Contains(got, "hello") || !strings.Contains(got, "192.168.0.200") {
			t.Errorf("the quick start did not show hello's address 192.168.0.200:\n%s", got)
		}
		env = append(env, "KUBECONFIG="+filepath.Join(opts.dir, "kubeconfig"))
		for _, s := range byKind["cluster"] {
			runSnippet(t, s, work, env)
		}
		waitFor(t, out, "ASSIGNED default/hello 192.168.0.200", "REFUSED default/bogus: AllocationFailed: InvalidRequest: ")
	})

	t.Run("rehearsal", func(t *testing.T) {
		dir := filepath.Join(work, "rehearsal")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		linkCheckout(t, dir)
		if err := os.Symlink(filepath.Join(work, "bin"), filepath.Join(dir, "bin")); err != nil {
			t.Fatal(err)
		}
		opts := testOptions(t, dir)
		opts.noController = true
		startCluster(t, opts)
		env := []string{"PATH=" + path, "KUBECONFIG=" + filepath.Join(opts.dir, "kubeconfig")}
		for _, s := range byKind["rehearsal"] {
			if len(s.args) > 0 && s.args[0] == "background" {
				startBackground(t, s, dir, env)
				continue
			}
			runSnippet(t, s, dir, env)
		}
	})
}

// buildKubectl is kubectl of the control plane's version, built once into
// the cache by hack/kubectl.sh.
func buildKubectl(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(checkout, "hack", "kubectl.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) == 0 {
		t.Fatalf("hack/kubectl.sh (builds kubectl for the snippets): %v\n%s", err, stderr.String())
	}
	return lines[len(lines)-1]
}

// workDir is a directory that looks like the checkout to a reader's
// commands: its top-level entries linked in, bin/ holding the binaries
// built for this test.
func workDir(t *testing.T) string {
	t.Helper()
	work := t.TempDir()
	linkCheckout(t, work)
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"kube-vip-cloud-provider", "kube-vip-sim"} {
		raw, err := os.ReadFile(filepath.Join(binDir, b))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "bin", b), raw, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return work
}

func linkCheckout(t *testing.T, dir string) {
	t.Helper()
	root, err := filepath.Abs(checkout)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case "bin", ".run", ".git", ".kubeconfig":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// shell is how a snippet runs: a yaml block is applied, a shell block
// runs with -e and -o pipefail, so a failing command fails it.
func shell(s snippet) *exec.Cmd {
	if s.lang == "yaml" {
		cmd := exec.Command("kubectl", "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(s.body)
		return cmd
	}
	return exec.Command("bash", "-e", "-o", "pipefail", "-c", s.body)
}

func runSnippet(t *testing.T, s snippet, dir string, env []string) string {
	t.Helper()
	cmd := shell(s)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if cmd.Path == "kubectl" || filepath.Base(cmd.Path) == "kubectl" {
		cmd.Path = lookPath(t, "kubectl", env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			if cmd.Process != nil {
				_ = cmd.Process.Kill()
			}
		case <-done:
		}
	}()
	out, err := cmd.CombinedOutput()
	close(done)
	if err != nil {
		t.Errorf("%s (%s) fails as written: %v\n--- the snippet:\n%s--- its output:\n%s", s, s.kind, err, s.body, out)
	}
	return string(out)
}

// startBackground starts a snippet that runs until the test ends (the
// controller of a rehearsal), in a process group of its own.
func startBackground(t *testing.T, s snippet, dir string, env []string) {
	t.Helper()
	cmd := shell(s)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("%s (background) printed:\n%s", s, out.String())
		}
	})
	select {
	case err := <-exited:
		t.Fatalf("%s (background) ended at once: %v\n%s", s, err, out.String())
	case <-time.After(time.Second):
	}
}

// lookPath finds name on the PATH of env.
func lookPath(t *testing.T, name string, env []string) string {
	t.Helper()
	for _, e := range env {
		if p, ok := strings.CutPrefix(e, "PATH="); ok {
			for _, dir := range filepath.SplitList(p) {
				if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && !fi.IsDir() {
					return filepath.Join(dir, name)
				}
			}
		}
	}
	t.Fatalf("%s is not on the PATH", name)
	return ""
}
