package hostcheck_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kvcp-dev/kube-vip-cloud-provider/e2e/hostcheck"
)

// host is a machine where the commands in have are installed.
func host(euid int, have ...string) hostcheck.Host {
	return hostcheck.Host{
		LookPath: func(cmd string) (string, error) {
			for _, h := range have {
				if h == cmd {
					return "/usr/bin/" + cmd, nil
				}
			}
			return "", &fs.PathError{Op: "lookpath", Path: cmd, Err: fs.ErrNotExist}
		},
		Stat: fstest.MapFS{
			"kube-vip": {Mode: 0o755},
			"not-exec": {Mode: 0o644},
			"a-dir/x":  {Mode: 0o644},
		}.Stat,
		EUID: euid,
	}
}

func TestKubeVIPPrecheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		host hostcheck.Host
		bin  string
		want []string // in the message, in this order; none: no error
		not  []string // never in the message
	}{
		{name: "all there", host: host(0, "ip", "env"), bin: "kube-vip"},
		{name: "no iproute2 names the package and the apt-get line", host: host(0, "env"), bin: "kube-vip",
			want: []string{`the command "ip" is not installed: it comes with the Debian package iproute2`, "apt-get install -y iproute2"},
			not:  []string{"coreutils", "root"}},
		{name: "two packages on one apt-get line", host: host(0), bin: "kube-vip",
			want: []string{"iproute2", "coreutils", "apt-get install -y iproute2 coreutils"}},
		{name: "not root", host: host(1000, "ip", "env"), bin: "kube-vip",
			want: []string{"not root", "sudo"}, not: []string{"apt-get"}},
		{name: "no binary says how to build one", host: host(0, "ip", "env"), bin: "missing",
			want: []string{"KUBE_VIP_BINARY=missing", "make kube-vip KUBE_VIP_SOURCE="}, not: []string{"apt-get"}},
		{name: "not executable", host: host(0, "ip", "env"), bin: "not-exec", want: []string{"KUBE_VIP_BINARY=not-exec is not an executable file"}},
		{name: "a directory", host: host(0, "ip", "env"), bin: "a-dir", want: []string{"KUBE_VIP_BINARY=a-dir is not an executable file"}},
		{name: "everything at once", host: host(1000), bin: "missing",
			want: []string{"not root", "iproute2", "KUBE_VIP_BINARY=missing", "apt-get install -y iproute2 coreutils"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.host.KubeVIP(tc.bin)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			msg, at := err.Error(), 0
			for _, w := range tc.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("message lacks %q (after position %d):\n%s", w, at, msg)
				}
				at += i + len(w)
			}
			for _, n := range tc.not {
				if strings.Contains(msg, n) {
					t.Errorf("message mentions %q:\n%s", n, msg)
				}
			}
		})
	}
}

func TestLocalFindsARealExecutable(t *testing.T) {
	// Local's Stat and mode check on a real file, not a fake file system.
	bin := filepath.Join(t.TempDir(), "kube-vip")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := hostcheck.Local()
	h.EUID = 0
	h.LookPath = func(string) (string, error) { return "", nil }
	if err := h.KubeVIP(bin); err != nil {
		t.Error(err)
	}
	if err := os.Chmod(bin, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.KubeVIP(bin); err == nil || !strings.Contains(err.Error(), "not an executable file") {
		t.Errorf("a file without the x bit: %v", err)
	}
}
