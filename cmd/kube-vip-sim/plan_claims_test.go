package main

import (
	"context"
	"errors"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
)

// plan reads the claims when the API server serves IPAddress, as the
// controller decides it: by discovery. Without the group version (older
// than 1.33) or the resource (the API disabled) it plans without them
// (nil); a discovery failure is an error, not a silent "none".
func TestLiveClaimsFollowDiscovery(t *testing.T) {
	netv1 := func(names ...string) *metav1.APIResourceList {
		l := &metav1.APIResourceList{GroupVersion: "networking.k8s.io/v1"}
		for _, n := range names {
			l.APIResources = append(l.APIResources, metav1.APIResource{Name: n})
		}
		return l
	}
	cip := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: "10.96.0.1", UID: "u1", Labels: map[string]string{networkingv1.LabelManagedBy: engine.ClusterIPManager}},
		Spec:       networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "kubernetes"}},
	}
	for _, tc := range []struct {
		name      string
		resources []*metav1.APIResourceList
		fail      bool
		want      []string // the owners of the claims read; nil: none served
		wantErr   bool
	}{
		{name: "served", resources: []*metav1.APIResourceList{netv1("ingresses", "ipaddresses")}, want: []string{"default/kubernetes"}},
		{name: "the resource disabled", resources: []*metav1.APIResourceList{netv1("ingresses")}},
		{name: "no networking.k8s.io/v1", resources: []*metav1.APIResourceList{{GroupVersion: "v1"}}},
		{name: "discovery fails", fail: true, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(cip)
			disc := cs.Discovery().(*fakediscovery.FakeDiscovery)
			disc.Resources = tc.resources
			if tc.fail {
				disc.PrependReactor("get", "resource", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("connection refused")
				})
			}
			claims, err := liveClaims(context.Background(), cs)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			var got []string
			for _, c := range claims {
				got = append(got, c.Owner)
			}
			if (claims == nil) != (tc.want == nil) || !slices.Equal(got, tc.want) {
				t.Errorf("claims of %q (nil: %v), want %q", got, claims == nil, tc.want)
			}
		})
	}
}
