package manifest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

func decode(t *testing.T, raw []byte) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifest.Objects(raw)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestManifestAppliesToARealAPIServer(t *testing.T) {
	cfg, _ := testenv.Start(t)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	objs := append(decode(t, manifest.CloudController), decode(t, manifest.ExampleConfigMap)...)
	dry := metav1.PatchOptions{FieldManager: "manifest-test", DryRun: []string{metav1.DryRunAll}}
	if err := manifest.Apply(ctx, cfg, objs, dry); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if err := manifest.Apply(ctx, cfg, objs, metav1.PatchOptions{FieldManager: "manifest-test"}); err != nil {
		t.Fatal(err)
	}

	// The names of the existing provider's manifest, and the pod name the docs use.
	if _, err := client.CoreV1().ServiceAccounts("kube-system").Get(ctx, "kube-vip-cloud-controller", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Get(ctx, "system:kube-vip-cloud-controller-binding", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if _, err := client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubevip", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	sts, err := client.AppsV1().StatefulSets("kube-system").Get(ctx, "kube-vip-cloud-provider", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkPod(t, sts)

	cr, err := client.RbacV1().ClusterRoles().Get(ctx, "system:kube-vip-cloud-controller-role", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role, err := client.RbacV1().Roles("kube-system").Get(ctx, "kube-vip-cloud-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(slices.Clone(cr.Rules), role.Rules...) {
		for _, list := range [][]string{r.Verbs, r.Resources, r.APIGroups} {
			if slices.Contains(list, "*") {
				t.Errorf("rule %+v uses a wildcard", r)
			}
		}
	}
	for _, r := range cr.Rules {
		if slices.Contains(r.Resources, "configmaps") || slices.Contains(r.Resources, "leases") || slices.Contains(r.Resources, "services/status") {
			t.Errorf("the ClusterRole grants %v cluster-wide", r.Resources)
		}
	}

	// What the ServiceAccount may and may not do, asked of the API server.
	sa := "system:serviceaccount:kube-system:kube-vip-cloud-controller"
	can := func(ns, group, resource, sub, verb string) bool {
		rev, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
			Spec: authzv1.SubjectAccessReviewSpec{User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
				ResourceAttributes: &authzv1.ResourceAttributes{Namespace: ns, Group: group, Resource: resource, Subresource: sub, Verb: verb}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SubjectAccessReview: %v", err)
		}
		return rev.Status.Allowed
	}
	for _, a := range []struct {
		ns, group, resource, sub, verb string
		want                           bool
	}{
		{"", "", "services", "", "list", true},
		{"", "", "services", "", "watch", true},
		{"team-a", "", "services", "", "update", true},
		{"team-a", "", "services", "", "patch", true},
		{"team-a", "", "events", "", "create", true},
		{"team-a", "", "events", "", "patch", true},
		{"team-a", "", "events", "", "update", false},
		{"team-a", "events.k8s.io", "events", "", "create", false},
		{"kube-system", "", "configmaps", "", "watch", true},
		{"kube-system", "coordination.k8s.io", "leases", "", "create", true},
		{"kube-system", "coordination.k8s.io", "leases", "", "update", true},
		{"kube-system", "coordination.k8s.io", "leases", "", "get", true},
		{"kube-system", "coordination.k8s.io", "leases", "", "delete", false},
		{"team-a", "", "services", "status", "update", false},
		{"team-a", "", "services", "", "delete", false},
		{"default", "", "configmaps", "", "list", false},
		{"kube-system", "", "secrets", "", "get", false},
		{"default", "coordination.k8s.io", "leases", "", "create", false},
		{"", "", "nodes", "", "list", false},
		{"", "networking.k8s.io", "ipaddresses", "", "create", true},
		{"", "networking.k8s.io", "ipaddresses", "", "delete", true},
		{"", "networking.k8s.io", "ipaddresses", "", "get", true},
		{"", "networking.k8s.io", "ipaddresses", "", "list", true},
		{"", "networking.k8s.io", "ipaddresses", "", "watch", true},
		{"", "networking.k8s.io", "ipaddresses", "", "update", false},
		{"", "networking.k8s.io", "servicecidrs", "", "list", false},
		// Secure metrics: who is this token, may it read /metrics.
		{"", "authentication.k8s.io", "tokenreviews", "", "create", true},
		{"", "authorization.k8s.io", "subjectaccessreviews", "", "create", true},
		{"", "authorization.k8s.io", "subjectaccessreviews", "", "list", false},
		{"", "authentication.k8s.io", "tokenreviews", "", "delete", false},
		{"", "", "serviceaccounts", "token", "create", false},
	} {
		if got := can(a.ns, a.group, a.resource, a.sub, a.verb); got != a.want {
			t.Errorf("%s %s/%s (sub %q) in %q: allowed=%v, want %v", a.verb, a.group, a.resource, a.sub, a.ns, got, a.want)
		}
	}

	// The metrics reader ClusterRole, bound to a scraper: get /metrics and
	// nothing else.
	reader, err := client.RbacV1().ClusterRoles().Get(ctx, "kube-vip-cloud-provider-metrics-reader", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reader.Rules) != 1 || len(reader.Rules[0].Resources) != 0 {
		t.Errorf("the metrics reader grants %+v", reader.Rules)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: reader.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: "monitoring"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mayGet := func(user, path, verb string) bool {
		rev, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
			Spec: authzv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"},
				NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: verb}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SubjectAccessReview: %v", err)
		}
		return rev.Status.Allowed
	}
	scraper := "system:serviceaccount:monitoring:prometheus"
	for _, a := range []struct {
		user, path, verb string
		want             bool
	}{
		{scraper, "/metrics", "get", true},
		{scraper, "/metrics", "post", false},
		{scraper, "/debug/pprof/", "get", false},
		{"system:serviceaccount:monitoring:other", "/metrics", "get", false},
		{sa, "/metrics", "get", false},
	} {
		// The API server's RBAC authorizer sees the binding just created
		// a moment later (it reads from a cache): ask again for a while.
		got := mayGet(a.user, a.path, a.verb)
		for deadline := time.Now().Add(10 * time.Second); got != a.want && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			got = mayGet(a.user, a.path, a.verb)
		}
		if got != a.want {
			t.Errorf("%s %s by %s: allowed=%v, want %v", a.verb, a.path, a.user, got, a.want)
		}
	}
}

func checkPod(t *testing.T, sts *appsv1.StatefulSet) {
	t.Helper()
	spec := sts.Spec.Template.Spec
	if spec.ServiceAccountName != "kube-vip-cloud-controller" {
		t.Errorf("serviceAccountName = %q", spec.ServiceAccountName)
	}
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, corev1.Capability("ALL")) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container security context too loose: %+v", sc)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("no %s limit", res)
		}
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("no liveness probe on /healthz")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("no readiness probe on /readyz")
	}
}

// The example ConfigMap parses with no error and no notice, and no two of
// its namespaces' pools overlap (a Service would otherwise get an address
// another namespace's pool also hands out).
func TestExampleConfigMapIsCleanAndPoolsDoNotOverlap(t *testing.T) {
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(manifest.ExampleConfigMap, &cm); err != nil {
		t.Fatal(err)
	}
	cfg, err := allocator.Parse(cm.Data, nil)
	if err != nil {
		t.Fatalf("the example is malformed: %v", err)
	}
	if n := cfg.Notices(); len(n) > 0 {
		t.Fatalf("the example draws notices: %v", n)
	}
	pools := cfg.Pools()
	for i, p := range pools {
		for _, q := range pools[i+1:] {
			for _, r := range p.Ranges() {
				for _, u := range q.Ranges() {
					if r.From().Compare(u.To()) <= 0 && u.From().Compare(r.To()) <= 0 {
						t.Errorf("pools %q (%v) and %q (%v) overlap", p.Name(), r, q.Name(), u)
					}
				}
			}
		}
	}
}

func TestDeleteRemovesAppliedObjectsAndToleratesGoneOnes(t *testing.T) {
	cfg, _ := testenv.Start(t)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	objs := decode(t, manifest.ExampleConfigMap)
	if err := manifest.Apply(ctx, cfg, objs, metav1.PatchOptions{FieldManager: "manifest-test"}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time every object is already gone
		if err := manifest.Delete(ctx, cfg, objs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubevip", metav1.GetOptions{}); err == nil {
		t.Error("the ConfigMap kubevip is still there after Delete")
	}
}
