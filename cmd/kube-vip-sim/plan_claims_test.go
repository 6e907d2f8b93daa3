package main

import (
	"context"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

// plan reads the claims when the API server serves IPAddress, as the
// controller decides it: by discovery. Without the group version (older
// than 1.33) or the resource (the API disabled) it plans without them
// (nil); a discovery failure is an error, not a silent "none".
func TestLiveClaimsFollowDiscovery(t *testing.T) {
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
		{name: "served", resources: []*metav1.APIResourceList{testenv.NetworkingV1("ingresses", "ipaddresses")}, want: []string{"default/kubernetes"}},
		{name: "the resource disabled", resources: []*metav1.APIResourceList{testenv.NetworkingV1("ingresses")}},
		{name: "no networking.k8s.io/v1", resources: []*metav1.APIResourceList{{GroupVersion: "v1"}}},
		{name: "discovery fails", fail: true, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(cip)
			testenv.Discovery(cs, tc.fail, tc.resources...)
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
