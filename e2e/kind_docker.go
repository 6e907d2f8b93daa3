package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kvcp-dev/kube-vip-cloud-provider/kind"
)

// dockerShimName is the name under which the e2e binary acts as docker
// (see DockerShim).
const dockerShimName = "docker"

// realDockerEnv names the docker the shim hands its rewritten commands to.
const realDockerEnv = "KVCP_E2E_REAL_DOCKER"

// ownBoundingSet is this process's capability bounding set.
func ownBoundingSet() (uint64, error) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return kind.BoundingSet(string(raw))
}

// IsDockerShim says whether this process was started as the docker shim
// (the e2e binary under the name docker, first on kind's PATH).
func IsDockerShim() bool { return filepath.Base(os.Args[0]) == dockerShimName }

// DockerShim runs the real docker (realDockerEnv) with kind's command line
// rewritten by Unprivileged, and returns its exit code.
func DockerShim(args []string) int {
	docker := os.Getenv(realDockerEnv)
	if docker == "" {
		fmt.Fprintf(os.Stderr, "e2e docker shim: %s is not set\n", realDockerEnv)
		return 127
	}
	bnd, err := ownBoundingSet()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e docker shim: %v\n", err)
		return 127
	}
	_, kmsg := os.Stat("/dev/kmsg")
	args = kind.Unprivileged(args, bnd, kmsg == nil)
	// Become the real docker: same stdio, same exit code, signals reach it.
	err = syscall.Exec(docker, append([]string{"docker"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "e2e docker shim: exec %s: %v\n", docker, err)
	return 127
}

// installDockerShim puts the running binary, as docker, first on PATH for
// kind, when this host refuses --privileged (a capability missing from
// the bounding set); it returns what it did, "" when nothing was needed.
func installDockerShim(dir string) (string, error) {
	bnd, err := ownBoundingSet()
	if err != nil {
		return "", err
	}
	if bnd&kind.AllCaps == kind.AllCaps {
		return "", nil
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "shim")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink(self, filepath.Join(bin, dockerShimName)); err != nil {
		return "", err
	}
	if err := os.Setenv(realDockerEnv, docker); err != nil {
		return "", err
	}
	if err := os.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH")); err != nil {
		return "", err
	}
	return fmt.Sprintf("this host's capability bounding set lacks %s, so Docker refuses --privileged: kind's nodes run with every other capability instead (e2e docker shim)",
		strings.Join(kind.MissingCaps(bnd), ", ")), nil
}
