package controller

import (
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/testenv"
)

// The decision to claim addresses rests on discovery: only an API server
// that lists ipaddresses in networking.k8s.io/v1 gets claims; one without
// the group version (older than 1.33) or without the resource (the API
// disabled) runs without them, logged once; a discovery failure is an
// error, not a silent "off".
func TestClaimsFollowDiscovery(t *testing.T) {
	tests := []struct {
		name      string
		resources []*metav1.APIResourceList
		fail      bool
		on        bool
		wantLog   string
		wantErr   bool
	}{
		{name: "served", resources: []*metav1.APIResourceList{testenv.NetworkingV1("ingresses", "ipaddresses", "servicecidrs")},
			on: true, wantLog: "Address claims are on"},
		{name: "the resource disabled", resources: []*metav1.APIResourceList{testenv.NetworkingV1("ingresses", "networkpolicies")},
			wantLog: "does not serve networking.k8s.io/v1 IPAddress"},
		{name: "no networking.k8s.io/v1", resources: []*metav1.APIResourceList{{GroupVersion: "v1"}},
			wantLog: "does not serve networking.k8s.io/v1 IPAddress"},
		{name: "discovery fails", fail: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			testenv.Discovery(cs, tc.fail, tc.resources...)
			var lines []string
			logger := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
			c := New(cs, Options{AddressClaims: true})
			before := len(c.synced)
			err := c.startClaims(klog.NewContext(context.Background(), logger), c.factory)
			if (err != nil) != tc.wantErr {
				t.Fatalf("startClaims: %v, want an error: %v", err, tc.wantErr)
			}
			if on := len(c.synced) > before; on != tc.on {
				t.Fatalf("an IPAddress informer started: %v, want %v", on, tc.on)
			}
			if tc.wantErr {
				return
			}
			if len(lines) != 1 || !strings.Contains(lines[0], tc.wantLog) {
				t.Fatalf("logged %q, want one line with %q", lines, tc.wantLog)
			}
		})
	}
	// Off by flag: discovery is not even asked.
	cs := fake.NewClientset()
	c := New(cs, Options{AddressClaims: false})
	if err := c.startClaims(context.Background(), c.factory); err != nil {
		t.Fatal(err)
	}
	if n := len(cs.Actions()); n != 0 {
		t.Fatalf("--address-claims=false still asked the API server: %v", cs.Actions())
	}
}
