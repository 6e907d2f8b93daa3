package kind_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/kind"
)

// This machine's bounding set: every capability but CAP_SYS_RESOURCE (24).
const noSysResource = kind.AllCaps &^ (1 << 24)

func TestUnprivileged(t *testing.T) {
	runArgs := []string{"run", "--name", "n", "--privileged", "--security-opt", "seccomp=unconfined", "--volume", "/var", "img"}
	for _, tc := range []struct {
		name    string
		args    []string
		bnd     uint64
		kmsg    bool
		want    func(t *testing.T, got []string)
		asGiven bool
	}{
		{name: "every capability: run unchanged", args: runArgs, bnd: kind.AllCaps, asGiven: true},
		{name: "no privileged flag: unchanged", args: []string{"run", "--name", "n", "img"}, bnd: noSysResource, asGiven: true},
		{name: "other commands unchanged", args: []string{"inspect", "--privileged"}, bnd: noSysResource, asGiven: true},
		{name: "an exec's command keeps its --privileged", args: []string{"exec", "-i", "n", "echo", "--privileged"}, bnd: noSysResource, asGiven: true},
		{name: "the image named --privileged is not a flag", args: []string{"run", "--privileged"}, bnd: noSysResource, asGiven: true},
		{name: "exec --privileged loses the flag", args: []string{"exec", "--privileged", "-i", "n", "cat"}, bnd: noSysResource, want: func(t *testing.T, got []string) {
			if want := []string{"exec", "-i", "n", "cat"}; !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		}},
		{name: "run --privileged: every capability the set has", args: runArgs, bnd: noSysResource, kmsg: true, want: func(t *testing.T, got []string) {
			if slices.Contains(got, "--privileged") {
				t.Errorf("still --privileged: %q", got)
			}
			var caps []string
			for i := 0; i+1 < len(got); i++ {
				if got[i] == "--cap-add" {
					caps = append(caps, got[i+1])
				}
			}
			if len(caps) != 37 || slices.Contains(caps, "SYS_RESOURCE") || !slices.Contains(caps, "SYS_ADMIN") || !slices.Contains(caps, "NET_ADMIN") || slices.Contains(caps, "BPF") {
				t.Errorf("cap-add %q: want the 38 Docker 20.10 knows but SYS_RESOURCE", caps)
			}
			joined := strings.Join(got, " ")
			for _, want := range []string{"--security-opt systempaths=unconfined", "--security-opt apparmor=unconfined", "--device-cgroup-rule a *:* rwm", "--device /dev/kmsg", "--volume /var img"} {
				if !strings.Contains(joined, want) {
					t.Errorf("%q lacks %q", joined, want)
				}
			}
			if got[0] != "run" || got[len(got)-1] != "img" {
				t.Errorf("command or image moved: %q", got)
			}
		}},
		{name: "no /dev/kmsg: not passed", args: runArgs, bnd: noSysResource, want: func(t *testing.T, got []string) {
			if slices.Contains(got, "/dev/kmsg") {
				t.Errorf("passes /dev/kmsg, which the host lacks: %q", got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.args)
			got := kind.Unprivileged(tc.args, tc.bnd, tc.kmsg)
			if !slices.Equal(tc.args, in) {
				t.Errorf("changed its input: %q", tc.args)
			}
			if tc.asGiven {
				if !slices.Equal(got, tc.args) {
					t.Errorf("got %q, want it unchanged", got)
				}
				return
			}
			tc.want(t, got)
		})
	}
}

func TestBoundingSet(t *testing.T) {
	for _, tc := range []struct {
		status  string
		want    uint64
		missing []string
		bad     bool
	}{
		{status: "Name:\tx\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n", want: noSysResource, missing: []string{"CAP_SYS_RESOURCE"}},
		{status: "CapBnd:\t000001ffffffffff\n", want: kind.AllCaps},
		{status: "CapBnd:\t00000000a80425fb\n", want: 0xa80425fb, missing: nil},
		{status: "Name:\tx\n", bad: true},
		{status: "CapBnd:\tzz\n", bad: true},
	} {
		got, err := kind.BoundingSet(tc.status)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: parsed as %x", tc.status, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %x, %v; want %x", tc.status, got, err, tc.want)
		}
		if tc.missing != nil && !slices.Equal(kind.MissingCaps(got), tc.missing) {
			t.Errorf("%q: missing %q, want %q", tc.status, kind.MissingCaps(got), tc.missing)
		}
	}
}
