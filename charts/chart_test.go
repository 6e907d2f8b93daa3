package charts_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kvcp-dev/kube-vip-cloud-provider/charts"
	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

const chartDir = "kube-vip-cloud-provider"

// helmLabels are the labels the chart adds for Helm's bookkeeping
// (kvcp.helmLabels); the manifest has none of them.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// everything turns on every optional part of the chart.
func everything() map[string]any {
	return map[string]any{
		"replicas":          2,
		"imagePullSecrets":  []any{map[string]any{"name": "registry"}},
		"configMap":         map[string]any{"name": "pools", "namespace": "kvcp-config", "data": map[string]any{"cidr-global": "192.0.2.0/28", "allow-share-global": true}},
		"loadBalancerClass": map[string]any{"enabled": true, "name": "example.com/lb"},
		"leaderElection":    map[string]any{"leaseName": "kvcp", "leaseDuration": "20s", "renewDeadline": "15s", "retryPeriod": "3s"},
		"metrics":           map[string]any{"port": 9090, "service": map[string]any{"enabled": true, "annotations": map[string]any{"a": "b"}}, "serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}}},
		"healthPort":        9091,
		"extraArgs":         []any{"--workers=4"},
		"podAnnotations":    map[string]any{"example.com/x": "y"},
		"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
		"priorityClassName": "system-cluster-critical",
	}
}

func TestChartLints(t *testing.T) {
	for name, values := range map[string]map[string]any{"defaults": nil, "everything": everything()} {
		t.Run(name, func(t *testing.T) {
			for _, msg := range charts.Lint(chartDir, "kube-system", values) {
				t.Error(msg)
			}
		})
	}
}

func TestLintCatchesABrokenChart(t *testing.T) {
	// The linter itself must be able to fail: a template that does not parse.
	dir := filepath.Join(t.TempDir(), chartDir)
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "templates", "broken.yaml"), []byte("{{ if }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if msgs := charts.Lint(dir, "kube-system", nil); len(msgs) == 0 {
		t.Error("helm lint found nothing wrong with a template that does not parse")
	}
}

func TestSchemaRefusesUnknownAndMistypedValues(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"a misspelt key":         {"replica": 2},
		"a misspelt nested key":  {"metrics": map[string]any{"serviceMonitor": map[string]any{"enable": true}}},
		"a string for a boolean": {"loadBalancerClass": map[string]any{"enabled": "yes"}},
		"a port out of range":    {"metrics": map[string]any{"port": 70000}},
		"an unknown pull policy": {"image": map[string]any{"pullPolicy": "Sometimes"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := charts.Render(chartDir, charts.Release{Name: "kvcp", Namespace: "kube-system"}, values); err == nil {
				t.Errorf("rendered with %v", values)
			}
			if msgs := charts.Lint(chartDir, "kube-system", values); len(msgs) == 0 {
				t.Errorf("lint passed with %v", values)
			}
		})
	}
}

func render(t *testing.T, ns string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := charts.Render(chartDir, charts.Release{Name: "kvcp", Namespace: ns}, values)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func key(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("no %s %s in the render", kind, name)
	return nil
}

// withoutHelmLabels drops Helm's bookkeeping labels (and a labels map left
// empty by that).
func withoutHelmLabels(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	labels := c.GetLabels()
	for _, l := range helmLabels {
		delete(labels, l)
	}
	if len(labels) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "labels")
	} else {
		c.SetLabels(labels)
	}
	return c.Object
}

func TestDefaultRenderIsTheManifest(t *testing.T) {
	want, err := manifest.Objects(manifest.CloudController)
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, "kube-system", nil)
	gotBy := map[string]*unstructured.Unstructured{}
	for _, u := range got {
		gotBy[key(u)] = u
		for _, l := range helmLabels {
			if _, ok := u.GetLabels()[l]; !ok {
				t.Errorf("%s: no label %s", key(u), l)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("the chart renders %d objects, the manifest has %d", len(got), len(want))
	}
	for _, w := range want {
		g, ok := gotBy[key(w)]
		if !ok {
			t.Errorf("the chart does not render %s", key(w))
			continue
		}
		if d := cmp.Diff(w.Object, withoutHelmLabels(g)); d != "" {
			t.Errorf("%s differs from the manifest (-manifest +chart):\n%s", key(w), d)
		}
	}
}

func containerArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	sts := find(t, objs, "StatefulSet", "kube-vip-cloud-provider")
	cs, _, _ := unstructured.NestedSlice(sts.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%d containers", len(cs))
	}
	args, _, err := unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
	if err != nil {
		t.Fatal(err)
	}
	return args
}

func TestValuesShapeTheRender(t *testing.T) {
	t.Run("another release namespace moves the ConfigMap, its Role and the Lease", func(t *testing.T) {
		objs := render(t, "kvcp-system", nil)
		for _, kind := range []string{"Role", "RoleBinding"} {
			if ns := find(t, objs, kind, "kube-vip-cloud-controller").GetNamespace(); ns != "kvcp-system" {
				t.Errorf("%s in %q", kind, ns)
			}
		}
		if args := containerArgs(t, objs); !slices.Contains(args, "--config-map-namespace=kvcp-system") {
			t.Errorf("args %q do not name the ConfigMap's namespace", args)
		}
	})
	t.Run("configMap.namespace kube-system keeps the binary's default", func(t *testing.T) {
		objs := render(t, "kvcp-system", map[string]any{"configMap": map[string]any{"namespace": "kube-system"}})
		if ns := find(t, objs, "Role", "kube-vip-cloud-controller").GetNamespace(); ns != "kube-system" {
			t.Errorf("Role in %q", ns)
		}
		if ns := find(t, objs, "ServiceAccount", "kube-vip-cloud-controller").GetNamespace(); ns != "kvcp-system" {
			t.Errorf("ServiceAccount in %q", ns)
		}
		for _, a := range containerArgs(t, objs) {
			if strings.HasPrefix(a, "--config-map-namespace") {
				t.Errorf("unneeded %s", a)
			}
		}
	})
	t.Run("everything", func(t *testing.T) {
		objs := render(t, "kvcp-system", everything())
		args := containerArgs(t, objs)
		for _, want := range []string{"--leader-elect=true", "--leader-elect-lease-name=kvcp", "--leader-elect-lease-duration=20s",
			"--leader-elect-renew-deadline=15s", "--leader-elect-retry-period=3s", "--config-map=pools", "--config-map-namespace=kvcp-config",
			"--enable-loadbalancerclass=true", "--loadbalancerclass-name=example.com/lb", "--metrics-bind-address=:9090",
			"--health-probe-bind-address=:9091", "--workers=4"} {
			if !slices.Contains(args, want) {
				t.Errorf("args %q lack %s", args, want)
			}
		}
		cm := find(t, objs, "ConfigMap", "pools")
		if cm.GetNamespace() != "kvcp-config" {
			t.Errorf("ConfigMap in %q", cm.GetNamespace())
		}
		// A ConfigMap's values are strings: a YAML boolean is written as one.
		if data, _, _ := unstructured.NestedStringMap(cm.Object, "data"); data["allow-share-global"] != "true" || data["cidr-global"] != "192.0.2.0/28" {
			t.Errorf("ConfigMap data %v", data)
		}
		sts := find(t, objs, "StatefulSet", "kube-vip-cloud-provider")
		if n, _, _ := unstructured.NestedFieldNoCopy(sts.Object, "spec", "replicas"); fmt.Sprint(n) != "2" {
			t.Errorf("replicas %v", n)
		}
		podLabels, _, _ := unstructured.NestedStringMap(sts.Object, "spec", "template", "metadata", "labels")
		svc := find(t, objs, "Service", "kube-vip-cloud-provider-metrics")
		sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
		if !matches(sel, podLabels) {
			t.Errorf("the metrics Service selects %v, the pods carry %v", sel, podLabels)
		}
		sm := find(t, objs, "ServiceMonitor", "kube-vip-cloud-provider")
		smSel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		if !matches(smSel, svc.GetLabels()) {
			t.Errorf("the ServiceMonitor selects %v, the metrics Service carries %v", smSel, svc.GetLabels())
		}
		if sm.GetLabels()["release"] != "prom" {
			t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
		}
	})
	t.Run("a secure ServiceMonitor scrapes over HTTPS with Prometheus' token", func(t *testing.T) {
		endpoint := func(t *testing.T, values map[string]any) map[string]any {
			t.Helper()
			sm := find(t, render(t, "kvcp-system", values), "ServiceMonitor", "kube-vip-cloud-provider")
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(eps) != 1 {
				t.Fatalf("%d endpoints", len(eps))
			}
			return eps[0].(map[string]any)
		}
		ep := endpoint(t, map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}})
		if ep["scheme"] != "https" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
			t.Errorf("default endpoint %v: want https with the ServiceAccount token", ep)
		}
		if skip, _, _ := unstructured.NestedBool(ep, "tlsConfig", "insecureSkipVerify"); !skip {
			t.Errorf("without a CA the self-signed certificate cannot be verified: %v", ep)
		}
		ep = endpoint(t, map[string]any{"metrics": map[string]any{"certSecret": "metrics-tls",
			"serviceMonitor": map[string]any{"enabled": true, "caSecret": map[string]any{"name": "metrics-ca"}}}})
		if _, found, _ := unstructured.NestedFieldNoCopy(ep, "tlsConfig", "insecureSkipVerify"); found {
			t.Errorf("with a CA the certificate must be verified: %v", ep)
		}
		if name, _, _ := unstructured.NestedString(ep, "tlsConfig", "ca", "secret", "name"); name != "metrics-ca" {
			t.Errorf("CA secret %q", name)
		}
		if key, _, _ := unstructured.NestedString(ep, "tlsConfig", "ca", "secret", "key"); key != "ca.crt" {
			t.Errorf("CA key %q", key)
		}
		if sn, _, _ := unstructured.NestedString(ep, "tlsConfig", "serverName"); sn != "kube-vip-cloud-provider-metrics.kvcp-system.svc" {
			t.Errorf("serverName %q", sn)
		}
		ep = endpoint(t, map[string]any{"metrics": map[string]any{"secure": false, "serviceMonitor": map[string]any{"enabled": true}}})
		if ep["scheme"] != "http" || ep["bearerTokenFile"] != nil || ep["tlsConfig"] != nil {
			t.Errorf("insecure endpoint %v", ep)
		}
	})
	t.Run("metrics.secure false and metrics.certSecret reach the binary", func(t *testing.T) {
		if args := containerArgs(t, render(t, "kube-system", map[string]any{"metrics": map[string]any{"secure": false}})); !slices.Contains(args, "--metrics-secure=false") {
			t.Errorf("args %q lack --metrics-secure=false", args)
		}
		objs := render(t, "kube-system", map[string]any{"metrics": map[string]any{"certSecret": "metrics-tls"}})
		dir := "/etc/kube-vip-cloud-provider/metrics-certs"
		if args := containerArgs(t, objs); !slices.Contains(args, "--metrics-cert-dir="+dir) {
			t.Errorf("args %q lack --metrics-cert-dir", args)
		}
		sts := find(t, objs, "StatefulSet", "kube-vip-cloud-provider")
		vols, _, _ := unstructured.NestedSlice(sts.Object, "spec", "template", "spec", "volumes")
		if len(vols) != 1 || fmt.Sprint(vols[0].(map[string]any)["secret"]) != "map[secretName:metrics-tls]" {
			t.Errorf("volumes %v", vols)
		}
		cs, _, _ := unstructured.NestedSlice(sts.Object, "spec", "template", "spec", "containers")
		mounts, _, _ := unstructured.NestedSlice(cs[0].(map[string]any), "volumeMounts")
		if len(mounts) != 1 || mounts[0].(map[string]any)["mountPath"] != dir || mounts[0].(map[string]any)["readOnly"] != true {
			t.Errorf("volumeMounts %v", mounts)
		}
	})
	t.Run("a ServiceMonitor brings its Service", func(t *testing.T) {
		objs := render(t, "kube-system", map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}})
		find(t, objs, "Service", "kube-vip-cloud-provider-metrics")
	})
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
