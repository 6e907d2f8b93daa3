package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Bounds of the secure metrics filter: each review the API server is asked
// may take reviewTimeout; a decision is kept for decisionTTL (as the API
// server's own delegated authentication and authorization caches do), for
// at most maxDecisions tokens.
const (
	reviewTimeout = 10 * time.Second
	decisionTTL   = 10 * time.Second
	maxDecisions  = 1024
)

// metricsAuth authenticates and authorizes the requests of /metrics through
// the API server, as controller-runtime's secure metrics do: the bearer
// token is checked with a TokenReview, then the user it names must be
// allowed to get the non-resource URL of the request (a SubjectAccessReview),
// e.g. by the ClusterRole kube-vip-cloud-provider-metrics-reader.
type metricsAuth struct {
	client kubernetes.Interface
	now    func() time.Time

	mu        sync.Mutex
	decisions map[[sha256.Size]byte]decision
}

// decision is the answer to one token for one path, until expires.
type decision struct {
	code    int // http.StatusOK when allowed
	message string
	expires time.Time
}

func newMetricsAuth(client kubernetes.Interface) *metricsAuth {
	return &metricsAuth{client: client, now: time.Now, decisions: map[[sha256.Size]byte]decision{}}
}

// wrap serves h to authorized requests only: 401 without a valid token,
// 403 for a user not allowed, 405 for a method other than GET.
func (a *metricsAuth) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		token, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kube-vip-cloud-provider metrics"`)
			http.Error(w, "Unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		}
		d := a.decide(r.Context(), token, r.URL.Path)
		if d.code != http.StatusOK {
			if d.code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="kube-vip-cloud-provider metrics"`)
			}
			http.Error(w, d.message, d.code)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bearerToken is the token of the request's Authorization header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// decide answers whether token may get path, from the cache or the API
// server. An error of the API server is a 503 and is not cached.
func (a *metricsAuth) decide(ctx context.Context, token, path string) decision {
	key := sha256.Sum256([]byte(path + "\x00" + token))
	now := a.now()
	a.mu.Lock()
	d, ok := a.decisions[key]
	a.mu.Unlock()
	if ok && now.Before(d.expires) {
		return d
	}
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	d, err := a.review(ctx, token, path)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Cannot authorize a metrics request")
		return decision{code: http.StatusServiceUnavailable, message: "cannot authorize the request: " + err.Error()}
	}
	d.expires = now.Add(decisionTTL)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.decisions) >= maxDecisions {
		for k, old := range a.decisions {
			if !now.Before(old.expires) {
				delete(a.decisions, k)
			}
		}
		if len(a.decisions) >= maxDecisions {
			clear(a.decisions)
		}
	}
	a.decisions[key] = d
	return d
}

// review asks the API server who token is (TokenReview) and whether that
// user may get path (SubjectAccessReview).
func (a *metricsAuth) review(ctx context.Context, token, path string) (decision, error) {
	tr, err := a.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		return decision{}, fmt.Errorf("create a TokenReview: %w", err)
	}
	if !tr.Status.Authenticated {
		return decision{code: http.StatusUnauthorized, message: "Unauthorized: the token is not valid"}, nil
	}
	u := tr.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := a.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: "get"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return decision{}, fmt.Errorf("create a SubjectAccessReview for %s: %w", u.Username, err)
	}
	if !sar.Status.Allowed {
		return decision{code: http.StatusForbidden, message: fmt.Sprintf("Forbidden: user %q may not get %s", u.Username, path)}, nil
	}
	return decision{code: http.StatusOK}, nil
}
