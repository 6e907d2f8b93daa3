// Package hostcheck checks, before the local end-to-end run starts
// anything, that this machine can run kube-vip in network namespaces, and
// when it cannot, says what to do: which Debian package to install, or to
// run as root. It only looks; it installs nothing.
package hostcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
)

// Tool is a command the run executes and the Debian package that ships it.
type Tool struct {
	Command string
	Package string
}

// Tools are the commands the kube-vip specs run: `ip` makes the network
// namespaces and runs kube-vip in one (`ip netns exec`), `env` clears
// kube-vip's environment. Everything else (ARP and ICMP probes, address
// lists) is done in Go.
func Tools() []Tool {
	return []Tool{{Command: "ip", Package: "iproute2"}, {Command: "env", Package: "coreutils"}}
}

// Host is what the check looks at. Local returns this machine's.
type Host struct {
	// LookPath finds a command, as exec.LookPath.
	LookPath func(string) (string, error)
	// Stat describes a file, as os.Stat.
	Stat func(string) (fs.FileInfo, error)
	// EUID is the effective user id.
	EUID int
}

// Local is this machine, as the run sees it.
func Local() Host {
	return Host{LookPath: exec.LookPath, Stat: os.Stat, EUID: os.Geteuid()}
}

// KubeVIP checks that kube-vip can run from the binary bin (the value of
// KUBE_VIP_BINARY): root, every command of Tools, and an executable bin.
// Its error names everything missing at once, and ends with the one
// apt-get line that installs the missing packages.
func (h Host) KubeVIP(bin string) error {
	var problems, packages []string
	if h.EUID != 0 {
		problems = append(problems, "not root: kube-vip needs CAP_NET_ADMIN and the run makes network namespaces (run it as root, e.g. with sudo)")
	}
	for _, t := range Tools() {
		if _, err := h.LookPath(t.Command); err != nil {
			problems = append(problems, fmt.Sprintf("the command %q is not installed: it comes with the Debian package %s", t.Command, t.Package))
			packages = append(packages, t.Package)
		}
	}
	switch fi, err := h.Stat(bin); {
	case err != nil:
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // the path is named already
		}
		problems = append(problems, fmt.Sprintf("KUBE_VIP_BINARY=%s: %v (`make kube-vip KUBE_VIP_SOURCE=<its source>` builds it into bin/)", bin, err))
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		problems = append(problems, fmt.Sprintf("KUBE_VIP_BINARY=%s is not an executable file", bin))
	}
	if len(problems) == 0 {
		return nil
	}
	msg := "this machine cannot run kube-vip for the end-to-end run:\n  - " + strings.Join(problems, "\n  - ")
	if len(packages) > 0 {
		msg += "\ninstall what is missing: apt-get install -y " + strings.Join(packages, " ")
	}
	return errors.New(msg)
}
