package kind

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// capNames are Linux's capabilities by number (linux/capability.h).
var capNames = [...]string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// dockerKnownCaps is how many of capNames Docker Engine 20.10 knows: it
// refuses the newer ones ("invalid CapAdd: unknown capability:
// \"CAP_PERFMON\""; so CAP_BPF and CAP_CHECKPOINT_RESTORE), so they are
// never asked for.
const dockerKnownCaps = 38 // up to CAP_AUDIT_READ

// AllCaps is the bounding set of a process with every capability above.
const AllCaps = uint64(1)<<len(capNames) - 1

// Unprivileged rewrites a docker command line of kind's so that it needs
// no --privileged, for a host whose capability bounding set bnd lacks
// some capability: Docker refuses --privileged there ("unable to apply
// caps"), as --privileged asks for all of them. `run --privileged` becomes
// --cap-add of every capability bnd has (of those Docker 20.10 knows),
// seccomp, AppArmor and the masked /proc paths unconfined, and every device
// allowed to the container's device cgroup (the node's own containers need
// them), with /dev/kmsg (the kubelet reads it) when hasKmsg.
// `exec --privileged` loses the flag: the exec'd process gets the
// container's capabilities. Nothing else changes; a command needing no
// rewrite comes back as it is, and so does every command when bnd has
// every capability.
func Unprivileged(args []string, bnd uint64, hasKmsg bool) []string {
	if bnd&AllCaps == AllCaps || len(args) == 0 {
		return args
	}
	out := make([]string, 0, len(args)+len(capNames)*2+8)
	switch args[0] {
	case "run", "create":
		// The image and its command come after the options: rewrite the
		// options only, up to the image (kind puts the image last, with no
		// command).
		for i, a := range args {
			if a != "--privileged" || i == len(args)-1 {
				out = append(out, a)
				continue
			}
			for n, name := range capNames[:dockerKnownCaps] {
				if bnd&(1<<n) != 0 {
					out = append(out, "--cap-add", name)
				}
			}
			out = append(out,
				"--security-opt", "seccomp=unconfined",
				"--security-opt", "apparmor=unconfined",
				"--security-opt", "systempaths=unconfined",
				"--device-cgroup-rule", "a *:* rwm")
			if hasKmsg {
				out = append(out, "--device", "/dev/kmsg")
			}
		}
		return out
	case "exec":
		if len(args) > 1 && args[1] == "--privileged" {
			return append(append(out, "exec"), args[2:]...)
		}
	}
	return args
}

// BoundingSet parses the CapBnd line of /proc/<pid>/status.
func BoundingSet(status string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			b, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("CapBnd %q: %w", strings.TrimSpace(v), err)
			}
			return b, nil
		}
	}
	return 0, errors.New("no CapBnd line in the process status")
}

// MissingCaps names the capabilities a bounding set lacks.
func MissingCaps(bnd uint64) []string {
	var out []string
	for n, name := range capNames {
		if bnd&(1<<n) == 0 {
			out = append(out, "CAP_"+name)
		}
	}
	return out
}
