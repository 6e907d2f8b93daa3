package layout

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPurePackagesDoNotImportClientGo lists the dependencies of each pure
// package with the go tool and fails on any k8s.io/client-go package.
func TestPurePackagesDoNotImportClientGo(t *testing.T) {
	const module = "github.com/kvcp-dev/kube-vip-cloud-provider/"
	for _, pkg := range []string{"allocator", "controller/decide", "controller/engine", "sim"} {
		out, err := exec.Command("go", "list", "-deps", module+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 2 {
			t.Fatalf("go list -deps %s listed %v: too few to be a real listing", pkg, deps)
		}
		for _, d := range deps {
			if strings.HasPrefix(d, "k8s.io/client-go") {
				t.Errorf("%s depends on %s: it must not talk to an API server", pkg, d)
			}
		}
	}
}

// TestTheControllerDoesImportClientGo shows the check above can fail: the
// client-go adapter is listed with client-go among its dependencies.
func TestTheControllerDoesImportClientGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kvcp-dev/kube-vip-cloud-provider/controller").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "k8s.io/client-go/") {
		t.Fatal("the controller's dependencies do not list client-go: the listing is broken")
	}
}
