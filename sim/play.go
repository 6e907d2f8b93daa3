package sim

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvcp-dev/kube-vip-cloud-provider/allocator"
)

// play applies one step (its kind's play, in stepKinds), then, unless the
// step let the controller settle or was itself a work item, lets the
// leader do a seeded amount of work.
func (s *simulator) play(st Step) error {
	k, n := kindOf(&st)
	if n != 1 {
		return fmt.Errorf("step %d: a step needs exactly one of %s (found %d)", s.step, kindNames(), n)
	}
	if err := k.play(s, &st); err != nil || k.settles || k.works {
		return err
	}
	// A seeded interleaving: the controller gets 0-3 work items in.
	for n := s.rng.IntN(4); n > 0; n-- {
		if _, err := s.work(); err != nil {
			return err
		}
	}
	return nil
}

// deleteService plays delete: the Service is gone from the API server.
func (s *simulator) deleteService(key string) error {
	if _, ok := s.cluster.services[key]; !ok {
		return fmt.Errorf("step %d (delete): %s: no such Service", s.step, key)
	}
	s.cluster.store(key, nil)
	s.reindex(key)
	delete(s.events, key)
	delete(s.failed, key)
	delete(s.granted, key)
	s.add(Row{Actor: "user", What: "delete", Service: key})
	return nil
}

// deleteConfigMap plays delete: {configmap: true}: the ConfigMap is gone;
// the leader has no pools until a config step creates it again, and syncs
// every Service again, as the controller does.
func (s *simulator) deleteConfigMap() {
	s.add(Row{Actor: "user", What: "delete", Detail: "ConfigMap kube-system/kubevip"})
	s.data, s.cmDeleted = nil, true
	if s.stopped {
		return
	}
	s.replicas[s.leader].engine.SetConfig(s.ctx, nil) // wakes every Service
}

// changeConfig plays config: the data is replaced; the leader loads it.
func (s *simulator) changeConfig(data map[string]string) { s.setConfig(data) }

// restart plays restart: the leader's process starts afresh; after a
// stop, every replica's.
func (s *simulator) restart() {
	s.add(Row{Actor: "user", What: "restart"})
	if s.stopped {
		s.stopped = false
		for i, r := range s.replicas {
			s.replicas[i] = s.newReplica(r.id)
		}
		return
	}
	s.replicas[s.leader] = s.newReplica(s.replicas[s.leader].id)
}

// stop plays stop: every controller process stops (it does no work, and
// hears of nothing) until a restart starts them afresh.
func (s *simulator) stop() error {
	if s.stopped {
		return fmt.Errorf("step %d (stop): the controller is stopped already", s.step)
	}
	s.stopped = true
	s.active = 1
	s.add(Row{Actor: "user", What: "stop"})
	return nil
}

// running reports an error for a step that needs a running controller.
func (s *simulator) running(kind string) error {
	if s.stopped {
		return fmt.Errorf("step %d (%s): the controller is stopped: restart it first", s.step, kind)
	}
	return nil
}

// setLag plays lag.
func (s *simulator) setLag(n int) {
	s.lag = n
	s.add(Row{Actor: "user", What: "lag", Detail: strconv.Itoa(s.lag)})
}

// loseAnswers plays lose.
func (s *simulator) loseAnswers(n int) {
	s.lost += n
	s.add(Row{Actor: "user", What: "lose", Detail: fmt.Sprintf("the answers to the next %d write(s)", n)})
}

// dropWrites plays drop.
func (s *simulator) dropWrites(n int) {
	s.dropped += n
	s.add(Row{Actor: "user", What: "drop", Detail: fmt.Sprintf("the next %d write(s), on their way", n)})
}

// injectConflicts plays conflict.
func (s *simulator) injectConflicts(c *Conflict) {
	n := c.writes()
	if c.Service != "" {
		s.conflictFor[c.Service] += n
	} else {
		s.conflicts += n
	}
	s.add(Row{Actor: "user", What: "conflict", Service: c.Service, Detail: fmt.Sprintf("next %d write(s)", n)})
}

// setReplicas plays replicas.
func (s *simulator) setReplicas(n int) {
	if n < 2 {
		s.active = 1
	}
	s.scale(n)
	s.add(Row{Actor: "user", What: "replicas", Detail: fmt.Sprintf("%d, leader is controller-%d", len(s.replicas), s.replicas[s.leader].id)})
}

// setActive plays active: with 2, both replicas act as leader at once (a
// stale leader that keeps writing after losing its Lease, or an old and a
// new controller side by side during an upgrade); with 1, the leader alone.
func (s *simulator) setActive(n int) error {
	if err := s.running("active"); err != nil {
		return err
	}
	if n == 2 && len(s.replicas) < 2 {
		return fmt.Errorf("step %d (active): needs replicas: 2 first", s.step)
	}
	s.active = n
	s.add(Row{Actor: "user", What: "active", Detail: fmt.Sprintf("%d controller(s) act at once", n)})
	for _, r := range s.acting() {
		// A running controller's informer has the ConfigMap in force.
		r.engine.SetConfig(s.ctx, s.configMap()) // wakes every Service
	}
	return nil
}

// handover plays handover.
func (s *simulator) handover() error {
	if err := s.running("handover"); err != nil {
		return err
	}
	if len(s.replicas) < 2 {
		return fmt.Errorf("step %d (handover): needs replicas: 2 first", s.step)
	}
	// The new leader builds its ledger from a fresh list after it has
	// won the Lease, as the real controller does after WaitForCacheSync;
	// the old one stops.
	s.leader = (s.leader + 1) % len(s.replicas)
	s.replicas[s.leader] = s.newReplica(s.replicas[s.leader].id)
	s.add(Row{Actor: "user", What: "handover", Detail: fmt.Sprintf("leader is controller-%d", s.replicas[s.leader].id)})
	return nil
}

// settleStep plays settle: shown, so that the step numbers do not skip.
func (s *simulator) settleStep() error {
	s.add(Row{Actor: "user", What: "settle"})
	return s.settle()
}

// expectStep plays expect, once the controller has settled.
func (s *simulator) expectStep(e *Expect) error {
	if err := s.settle(); err != nil {
		return err
	}
	if !s.opts.CheckOnlyAtEnd {
		if err := s.checkQuiet(); err != nil {
			return err
		}
	}
	return s.expect(e)
}

func formatData(d map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(d) {
		parts = append(parts, k+"="+d[k])
	}
	return strings.Join(parts, " ")
}

func (s *simulator) create(spec *ServiceSpec) error {
	ns, name, _ := splitRef(spec.Service)
	if _, ok := s.cluster.services[spec.Service]; ok {
		return fmt.Errorf("step %d (create): %s: already exists", s.step, spec.Service)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	s.cluster.created++
	svc.CreationTimestamp = metav1.Unix(s.cluster.created, 0)
	applySpec(svc, spec)
	s.cluster.store(spec.Service, svc)
	s.reindex(spec.Service)
	s.add(Row{Actor: "user", What: "create", Service: spec.Service})
	return nil
}

func (s *simulator) update(spec *ServiceSpec) error {
	cur, ok := s.cluster.services[spec.Service]
	if !ok {
		return fmt.Errorf("step %d (update): %s: no such Service", s.step, spec.Service)
	}
	svc := cur.DeepCopy()
	applySpec(svc, spec)
	// As the API server: a LoadBalancer's class may not change once set,
	// and other types have none (it is cleared when the type changes;
	// spec.loadBalancerIP is not).
	wasLB, isLB := cur.Spec.Type == corev1.ServiceTypeLoadBalancer, svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	if wasLB && isLB && className(cur) != className(svc) {
		return fmt.Errorf("step %d (update): %s: loadBalancerClass %q: may not change once set (the API server refuses it); change the type away from LoadBalancer first",
			s.step, spec.Service, className(svc))
	}
	if !isLB {
		svc.Spec.LoadBalancerClass = nil // cleared by the API server; loadBalancerIP is kept
	}
	s.cluster.store(spec.Service, svc)
	delete(s.failed, spec.Service)
	s.reindex(spec.Service)
	s.add(Row{Actor: "user", What: "update", Service: spec.Service})
	return nil
}

// className returns svc's loadBalancerClass, or "".
func className(svc *corev1.Service) string {
	if svc.Spec.LoadBalancerClass == nil {
		return ""
	}
	return *svc.Spec.LoadBalancerClass
}

// applySpec sets the fields spec gives.
func applySpec(svc *corev1.Service, spec *ServiceSpec) {
	if spec.Type != "" {
		svc.Spec.Type = corev1.ServiceType(spec.Type)
	}
	if spec.Ports != nil {
		svc.Spec.Ports = nil
		for _, p := range spec.Ports {
			pp, _ := allocator.ParsePort(p)
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Port: pp.Number, Protocol: corev1.Protocol(pp.Protocol)})
		}
	}
	if spec.IPFamilyPolicy != "" {
		p := corev1.IPFamilyPolicy(spec.IPFamilyPolicy)
		svc.Spec.IPFamilyPolicy = &p
	}
	if spec.IPFamilies != nil {
		svc.Spec.IPFamilies = nil
		for _, f := range spec.IPFamilies {
			svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, corev1.IPFamily(f))
		}
	}
	if spec.LoadBalancerIP != nil {
		svc.Spec.LoadBalancerIP = *spec.LoadBalancerIP
	}
	if spec.LoadBalancerClass != nil {
		if *spec.LoadBalancerClass == "" {
			svc.Spec.LoadBalancerClass = nil
		} else {
			c := *spec.LoadBalancerClass
			svc.Spec.LoadBalancerClass = &c
		}
	}
	if spec.Ingress != nil {
		svc.Status.LoadBalancer.Ingress = nil
		for _, ip := range spec.Ingress {
			svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
	}
	for k, v := range spec.Annotations {
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		if v == "" {
			delete(svc.Annotations, k)
		} else {
			svc.Annotations[k] = v
		}
	}
}
