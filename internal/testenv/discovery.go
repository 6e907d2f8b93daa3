package testenv

import (
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// Discovery makes the fake clientset cs discover the given resource lists
// (NetworkingV1 makes one), or, with fail, answer every discovery with an
// error, as an API server that cannot be reached does.
func Discovery(cs *fake.Clientset, fail bool, resources ...*metav1.APIResourceList) {
	disc := cs.Discovery().(*fakediscovery.FakeDiscovery)
	disc.Resources = resources
	if fail {
		disc.PrependReactor("get", "resource", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("connection refused")
		})
	}
}

// NetworkingV1 is the networking.k8s.io/v1 resource list naming the given
// resources.
func NetworkingV1(names ...string) *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: "networking.k8s.io/v1"}
	for _, n := range names {
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: n})
	}
	return l
}
