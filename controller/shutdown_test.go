package controller_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
)

// TestRunStopsWhileDiscoveryHangs cancels Run while the discovery of the
// claims API (which takes no context) hangs: Run must return at once.
func TestRunStopsWhileDiscoveryHangs(t *testing.T) {
	client := fake.NewClientset()
	entered := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	client.PrependReactor("get", "resource", func(k8stesting.Action) (bool, runtime.Object, error) {
		close(entered)
		<-release
		return false, nil, nil
	})
	c := controller.New(client, controller.Options{AddressClaims: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("Run never asked for the claims API")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run still waits for the discovery 2 s after its context was cancelled")
	}
}
