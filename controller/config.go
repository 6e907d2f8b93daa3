package controller

import (
	"errors"

	corev1 "k8s.io/api/core/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// configState turns ConfigMap versions into the Config in force, keeping
// the last good value of every key that a new version breaks.
type configState struct {
	cfg *allocator.Config
	// version is the resourceVersion of the ConfigMap last parsed, "" when
	// there is none.
	version string
}

// update parses cm (nil when the ConfigMap does not exist) and returns the
// per-key errors. A deleted ConfigMap means no pools: addresses already
// assigned are kept; new Services wait for a pool.
func (s *configState) update(cm *corev1.ConfigMap) []*allocator.KeyError {
	if cm == nil {
		s.cfg, _ = allocator.Parse(nil, nil)
		s.version = ""
		return nil
	}
	cfg, err := allocator.Parse(cm.Data, s.cfg)
	s.cfg, s.version = cfg, cm.ResourceVersion
	return keyErrors(err)
}

// keyErrors flattens the joined error Parse returns.
func keyErrors(err error) []*allocator.KeyError {
	if err == nil {
		return nil
	}
	var out []*allocator.KeyError
	var walk func(error)
	walk = func(e error) {
		if ke, ok := e.(*allocator.KeyError); ok {
			out = append(out, ke)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ke *allocator.KeyError
		if errors.As(e, &ke) {
			out = append(out, ke)
		}
	}
	walk(err)
	return out
}
