// Package charts renders and lints this repository's Helm charts with the
// Helm library, as `helm template` and `helm lint` would, so that tests
// check exactly what a user installs. It never talks to a cluster.
package charts

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

// Release names an installation: `helm template NAME DIR -n NAMESPACE`.
type Release struct {
	Name      string
	Namespace string
}

// Render renders the chart in dir for rel with values over the chart's
// own values.yaml, and decodes the objects, in the order of their
// template files (NOTES.txt and helpers left out). A template that fails
// or renders something that is not YAML is an error naming its file.
func Render(dir string, rel Release, values map[string]any) ([]*unstructured.Unstructured, error) {
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	opts := chartutil.ReleaseOptions{Name: rel.Name, Namespace: rel.Namespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValues(ch, values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("values of chart %s: %w", dir, err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("render chart %s: %w", dir, err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		base := path.Base(name)
		if base == "NOTES.txt" || strings.HasPrefix(base, "_") {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var out []*unstructured.Unstructured
	for _, name := range names {
		objs, err := manifest.Objects([]byte(files[name]))
		if err != nil {
			return nil, fmt.Errorf("rendered %s: %w", name, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// Lint runs Helm's linter (`helm lint DIR -n NAMESPACE`) on the chart in
// dir with values, and returns its messages of severity warning or
// error, each as Helm prints it.
func Lint(dir, namespace string, values map[string]any) []string {
	var out []string
	for _, m := range lint.All(dir, values, namespace, false).Messages {
		if m.Severity >= support.WarningSev {
			out = append(out, m.Error())
		}
	}
	return out
}
