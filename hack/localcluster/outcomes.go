package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/decide"
)

// outcome is the line printed for one of the controller's Events, and
// false for an Event that is not the controller's. addresses is what the
// Service carried in kube-vip.io/loadbalancerIPs when the Event was seen:
// only an AddressAssigned Event makes it an assignment, never the
// annotation alone (a refused request sits there too).
func outcome(ev *corev1.Event, addresses string) (string, bool) {
	if ev.Source.Component != controller.Component {
		return "", false
	}
	obj := ev.InvolvedObject.Namespace + "/" + ev.InvolvedObject.Name
	switch {
	case ev.InvolvedObject.Kind != "Service":
		return fmt.Sprintf("%s %s %s: %s: %s", strings.ToUpper(ev.Type), ev.InvolvedObject.Kind, obj, ev.Reason, ev.Message), true
	case ev.Reason == decide.ReasonAllocationFailed:
		return fmt.Sprintf("REFUSED %s: %s: %s", obj, ev.Reason, ev.Message), true
	case ev.Reason == decide.ReasonAddressAssigned && addresses != "":
		return fmt.Sprintf("ASSIGNED %s %s", obj, addresses), true
	case ev.Type == corev1.EventTypeWarning:
		return fmt.Sprintf("WARNING %s: %s: %s", obj, ev.Reason, ev.Message), true
	default:
		return fmt.Sprintf("NOTE %s: %s: %s", obj, ev.Reason, ev.Message), true
	}
}

// printOutcomes prints a line per Event of the controller (once per
// object, reason and message) until ctx ends; ready is closed once the
// first watch is open.
func printOutcomes(ctx context.Context, client kubernetes.Interface, out io.Writer, ready chan<- struct{}) {
	seen := map[string]bool{}
	var rv string
	for ctx.Err() == nil {
		w, err := client.CoreV1().Events("").Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		if ready != nil {
			close(ready)
			ready = nil
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			rv = ""
			continue
		}
		for e := range w.ResultChan() {
			ev, ok := e.Object.(*corev1.Event)
			if !ok || (e.Type != watch.Added && e.Type != watch.Modified) {
				continue
			}
			rv = ev.ResourceVersion
			key := string(ev.InvolvedObject.UID) + "\x00" + ev.Reason + "\x00" + ev.Message
			if seen[key] {
				continue
			}
			var addresses string
			if ev.InvolvedObject.Kind == "Service" && ev.Reason == decide.ReasonAddressAssigned {
				if svc, err := client.CoreV1().Services(ev.InvolvedObject.Namespace).Get(ctx, ev.InvolvedObject.Name, metav1.GetOptions{}); err == nil && svc.UID == ev.InvolvedObject.UID {
					addresses = svc.Annotations[decide.AnnotationLoadBalancerIPs]
				}
			}
			if line, ok := outcome(ev, addresses); ok {
				seen[key] = true
				fmt.Fprintln(out, line)
			}
		}
		w.Stop()
	}
}
