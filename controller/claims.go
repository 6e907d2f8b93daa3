package controller

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/ipaddress"
)

// claimsAdapter keeps the engine's address claims as networking.k8s.io/v1
// IPAddress objects, one per address, named by it.
type claimsAdapter struct {
	c       *Controller
	lister  networkinglisters.IPAddressLister
	indexer cache.Indexer
}

// byHolder indexes our claims by the Services they name (owner and
// sharers).
const byHolder = "holder"

// holderKeys is the index function of byHolder.
func holderKeys(obj interface{}) ([]string, error) {
	ip, ok := obj.(*networkingv1.IPAddress)
	if !ok {
		return nil, nil
	}
	cl, ok := ipaddress.Claim(ip)
	if !ok || !cl.Ours() {
		return nil, nil
	}
	return append([]string{cl.Owner}, cl.Sharers...), nil
}

// startClaims turns the claims on when asked and available: an informer of
// IPAddress objects feeds the engine.
func (c *Controller) startClaims(ctx context.Context, factory informers.SharedInformerFactory) error {
	logger := klog.FromContext(ctx)
	if !c.opts.AddressClaims {
		logger.Info("Address claims are off (--address-claims=false): uniqueness rests on this process alone")
		return nil
	}
	ok, err := ipaddress.Served(c.client.Discovery())
	if err != nil {
		return err
	}
	if !ok {
		logger.Info("The API server does not serve networking.k8s.io/v1 IPAddress (Kubernetes older than 1.33, or the API disabled): running without address claims")
		return nil
	}
	inf := factory.Networking().V1().IPAddresses()
	if err := inf.Informer().AddIndexers(cache.Indexers{byHolder: holderKeys}); err != nil {
		return fmt.Errorf("index the address claims: %w", err)
	}
	a := &claimsAdapter{c: c, lister: inf.Lister(), indexer: inf.Informer().GetIndexer()}
	_, _ = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { a.seen(logger, obj) },
		UpdateFunc: func(_, obj interface{}) { a.seen(logger, obj) },
		DeleteFunc: func(obj interface{}) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if ip, ok := obj.(*networkingv1.IPAddress); ok {
				if cl, ok := ipaddress.Claim(ip); ok {
					c.engine.ClaimGone(cl)
				}
			}
		},
	})
	c.synced = append(c.synced, inf.Informer().HasSynced)
	c.engine.UseClaims(a)
	logger.Info("Address claims are on: one IPAddress per address given out", "managedBy", engine.ManagedBy)
	return nil
}

// seen tells the engine of a claim the informer shows. A claim of ours
// whose uids annotation is malformed is read as one that records no UIDs
// (its Services are judged by their creation times): said in the log.
func (a *claimsAdapter) seen(logger klog.Logger, obj interface{}) {
	if ip, ok := obj.(*networkingv1.IPAddress); ok {
		if cl, ok := ipaddress.Claim(ip); ok {
			if _, err := engine.ParseUIDs(ip.Annotations[engine.UIDsAnnotation]); err != nil && cl.Ours() {
				logger.Error(err, "Address claim with a malformed UIDs annotation: its Services are judged by their creation times", "address", cl.Addr, "claimedFor", cl.Owner)
			}
			a.c.engine.ClaimSeen(cl)
		}
	}
}

// Get implements engine.Claims.
func (a *claimsAdapter) Get(addr netip.Addr) (engine.Claim, bool) {
	ip, err := a.lister.Get(addr.String())
	if err != nil {
		return engine.Claim{}, false
	}
	return ipaddress.Claim(ip)
}

// List implements engine.Claims.
func (a *claimsAdapter) List() []engine.Claim {
	ips, _ := a.lister.List(labels.Everything()) // a lister never fails
	out := make([]engine.Claim, 0, len(ips))
	for _, ip := range ips {
		if cl, ok := ipaddress.Claim(ip); ok {
			out = append(out, cl)
		}
	}
	return out
}

// Naming implements engine.Claims.
func (a *claimsAdapter) Naming(key string) []engine.Claim {
	objs, _ := a.indexer.ByIndex(byHolder, key) // the index exists
	out := make([]engine.Claim, 0, len(objs))
	for _, o := range objs {
		if ip, ok := o.(*networkingv1.IPAddress); ok {
			if cl, ok := ipaddress.Claim(ip); ok {
				out = append(out, cl)
			}
		}
	}
	return out
}

// Create implements engine.Claims: on AlreadyExists it reads the claim
// that exists from the API server and returns it with the error.
func (a *claimsAdapter) Create(ctx context.Context, cl engine.Claim) (engine.Claim, error) {
	ip, err := claimObject(cl)
	if err != nil {
		return engine.Claim{}, err
	}
	addr := cl.Addr
	created, err := a.c.client.NetworkingV1().IPAddresses().Create(ctx, ip, metav1.CreateOptions{FieldManager: FieldManager})
	if err == nil {
		made, _ := ipaddress.Claim(created)
		return made, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return engine.Claim{}, err
	}
	existing, gerr := a.c.client.NetworkingV1().IPAddresses().Get(ctx, addr.String(), metav1.GetOptions{})
	if gerr != nil {
		// Gone again, or unreadable: say it exists; the next try decides.
		return engine.Claim{Addr: addr, Manager: "unknown"}, err
	}
	cur, _ := ipaddress.Claim(existing)
	return cur, err
}

// claimObject is the IPAddress that stands for the claim cl, one of ours,
// as Create makes it: named by the address, labelled as ours, its parent
// the owner, its sharers and their UIDs in annotations (ipaddress.Claim
// reads it back).
func claimObject(cl engine.Claim) (*networkingv1.IPAddress, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(cl.Owner)
	if err != nil || ns == "" || name == "" {
		return nil, fmt.Errorf("claim %s: owner %q is no namespace/name", cl.Addr, cl.Owner)
	}
	ip := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: cl.Addr.String(), Labels: map[string]string{
			networkingv1.LabelManagedBy:       engine.ManagedBy,
			networkingv1.LabelIPAddressFamily: family(cl.Addr),
		}},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Group: "", Resource: "services", Namespace: ns, Name: name}},
	}
	annotations := map[string]string{}
	if len(cl.Sharers) > 0 {
		annotations[engine.SharersAnnotation] = strings.Join(cl.Sharers, ",")
	}
	if uids := engine.FormatUIDs(append([]string{cl.Owner}, cl.Sharers...), cl.UIDs); uids != "" {
		annotations[engine.UIDsAnnotation] = uids
	}
	if len(annotations) > 0 {
		ip.Annotations = annotations
	}
	return ip, nil
}

// Delete implements engine.Claims, with the claim's UID as a precondition:
// a Conflict when another object holds the name by now.
func (a *claimsAdapter) Delete(ctx context.Context, cl engine.Claim) error {
	opts := metav1.DeleteOptions{}
	if cl.ID != "" {
		uid := types.UID(cl.ID)
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	return a.c.client.NetworkingV1().IPAddresses().Delete(ctx, cl.Addr.String(), opts)
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
