//go:build e2e

package history

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// The pressure node: 4 CPUs and 8Gi raw, static policy, cpu x2 and memory x1.5. Two pods bound
// to it request 4Gi each; a third, the probe's twin, comes through the scheduler before the
// pressure: 10Gi requested, 2Gi free of the overcommitted 12Gi, exactly the probe's request.
const (
	pressureCPU       = 8000
	pressureMemory    = 12 * gi
	pressureRequested = 10 * gi
	probeMemory       = "2Gi"
)

// memoryPressure: a node reporting MemoryPressure is held at its pods' requests (memory only), so
// a pod that fitted before it, created through the real scheduler, stays Pending (Insufficient
// memory) while every pod bound to the node still fits its allocatable; the hold outlasts the
// condition (the cool-down's start). The cool-down's end (PressureCooldown, 5 minutes after the
// condition clears) is left to the unit tests of shared/policy: waiting for it here would double
// this package's time.
//
// The node is not kwok's: kwok's heartbeat writes every condition from a fixed list
// (MemoryPressure False) on every beat, so the test writes the node's status as its kubelet,
// heartbeats included, and marks its pods Running.
func memoryPressure(t *testing.T, mode string) {
	ctx := context.Background()
	cs := env.Client()
	name := "pressure-" + mode
	rec := record(t, name)
	k := startKubelet(t, name, mode)
	for i := range 2 {
		pod := probePod(name, fmt.Sprintf("%s-running-%d", name, i), "500m", "4Gi")
		pod.Spec.NodeName = name
		k.run(pod)
	}
	rec.await(t, 30*time.Second, "the static policy's allocatable", func(s stored) error {
		if s.cpu != pressureCPU || s.memory != pressureMemory {
			return fmt.Errorf("want cpu %dm, memory %d", pressureCPU, pressureMemory)
		}
		return nil
	})

	// The probe's twin fits while the node is healthy: the scheduler binds it.
	k.run(probePod(name, name+"-before", "100m", probeMemory))
	// Both modes read the pods' requests from the webhook's pod cache: in policy mode through the
	// record it publishes, in webhook mode directly; the record shows the cache has all three pods.
	harness.Eventually(t, 30*time.Second, "the published requests record", func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		r, err := policy.ParseRequests(n.Annotations[names.RequestsAnnotation])
		if err != nil {
			return fmt.Errorf("%s %q: %w", names.RequestsAnnotation, n.Annotations[names.RequestsAnnotation], err)
		}
		if r[corev1.ResourceMemory] != pressureRequested {
			return fmt.Errorf("%s %q, want memory %d", names.RequestsAnnotation, n.Annotations[names.RequestsAnnotation], pressureRequested)
		}
		return nil
	})

	k.setPressure(true)
	held := rec.await(t, 30*time.Second, "memory held at the pods' requests", func(s stored) error {
		if s.memory != pressureRequested || !strings.Contains(s.hold, policy.HoldMemory) {
			return fmt.Errorf("want memory %d held (%s)", pressureRequested, policy.HoldMemory)
		}
		return nil
	})
	if held.cpu != pressureCPU {
		t.Errorf("under memory pressure, stored %s; want cpu %dm unchanged", held, pressureCPU)
	}
	checkPodsFit(t, name, held)

	// Without the hold, 12Gi - 10Gi is exactly the probe's request: it would fit.
	probe := probePod(name, name+"-after", "100m", probeMemory)
	if _, err := cs.CoreV1().Pods("default").Create(ctx, probe, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "the probe unschedulable for memory", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, probe.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Spec.NodeName != "" {
			return fmt.Errorf("bound to %s", p.Spec.NodeName)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
				strings.Contains(c.Message, "Insufficient memory") {
				return nil
			}
		}
		return fmt.Errorf("not unschedulable for memory yet: %+v", p.Status.Conditions)
	})

	// The condition clears: the cool-down keeps the hold on the writes that follow.
	k.setPressure(false)
	for range 3 {
		n := k.beat()
		a, err := policy.ParseApplied(n.Annotations[names.AppliedAnnotation])
		if mem := n.Status.Allocatable.Memory().Value(); err != nil || mem != pressureRequested || !strings.Contains(a.Hold, policy.HoldMemory) {
			t.Errorf("cooling down, stored memory %d with applied %q (%v); want %d held", mem, n.Annotations[names.AppliedAnnotation], err, pressureRequested)
		}
	}
	p, err := cs.CoreV1().Pods("default").Get(ctx, probe.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" {
		t.Errorf("the probe was bound to %s during the cool-down", p.Spec.NodeName)
	}
	pods := podsOn(t, name)
	if len(pods) != 3 {
		t.Errorf("%d pods on the node, want the 3 that ran before the pressure", len(pods))
	}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			t.Errorf("pod %s: phase %s, deleting %v; want Running", p.Name, p.Status.Phase, p.DeletionTimestamp != nil)
		}
	}
}

// checkPodsFit checks that the held allocatable still holds every pod bound to the node, so that
// a kubelet admitting them again (after a restart) would reject none.
func checkPodsFit(t *testing.T, node string, s stored) {
	t.Helper()
	var cpu, memory int64
	for _, p := range podsOn(t, node) {
		for _, c := range p.Spec.Containers {
			cpu += c.Resources.Requests.Cpu().MilliValue()
			memory += c.Resources.Requests.Memory().Value()
		}
	}
	if cpu > s.cpu || memory > s.memory {
		t.Errorf("the pods on %s request cpu %dm and memory %d, more than the stored %s", node, cpu, memory, s)
	}
}

// podsOn lists the pods bound to node.
func podsOn(t *testing.T, node string) []corev1.Pod {
	t.Helper()
	list, err := env.Client().CoreV1().Pods("default").List(context.Background(),
		metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// probePod is a pod for the scheduler to place on node only. It tolerates the memory-pressure
// taint: the node lifecycle controller taints a node that reports MemoryPressure, which keeps out
// every pod without the toleration before allocatable matters. Pods with it (every DaemonSet's)
// are the ones only the pressure guard keeps out, and the guard is what this test is about.
func probePod(node, name, cpu, memory string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{corev1.LabelHostname: node},
			Tolerations:  []corev1.Toleration{{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}}}},
		},
	}
}

// kubelet plays the kubelet of one node that kwok does not manage: it registers the node,
// writes its Ready and MemoryPressure conditions every heartbeat, and marks its pods Running.
type kubelet struct {
	t    *testing.T
	name string

	registered metav1.Time // Ready's lastTransitionTime

	mu       sync.Mutex
	pressure bool
	since    metav1.Time // MemoryPressure's lastTransitionTime
}

// startKubelet registers the opted-in node name (static policy, cpu x2, memory x1.5) in mode
// and heartbeats until the test ends.
func startKubelet(t *testing.T, name, mode string) *kubelet {
	t.Helper()
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
	now := metav1.Now()
	k := &kubelet{t: t, name: name, registered: now, since: now}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{corev1.LabelHostname: name, corev1.LabelOSStable: "linux", names.EnabledLabel: names.EnabledValue, modeLabel: mode},
			Annotations: map[string]string{names.CPURatioAnnotation: "2", names.MemoryRatioAnnotation: "1.5"}},
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res.DeepCopy(), Conditions: k.conditions()},
	}
	if _, err := env.Client().CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				// A missed beat is retried at the next; the node lifecycle controller waits minutes.
				_, _ = k.write()
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	return k
}

func (k *kubelet) conditions() []corev1.NodeCondition {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := metav1.Now()
	mem := corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory",
		LastHeartbeatTime: now, LastTransitionTime: k.since}
	if k.pressure {
		mem.Status, mem.Reason = corev1.ConditionTrue, "KubeletHasInsufficientMemory"
	}
	return []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: k.registered},
		mem,
	}
}

// write sends a heartbeat, as the kubelet's conditions-only status patch, and returns the node
// as stored.
func (k *kubelet) write() (*corev1.Node, error) {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": k.conditions()}})
	if err != nil {
		return nil, err
	}
	return env.Client().CoreV1().Nodes().Patch(context.Background(), k.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
}

// beat is write that fails the test.
func (k *kubelet) beat() *corev1.Node {
	k.t.Helper()
	n, err := k.write()
	if err != nil {
		k.t.Fatal(err)
	}
	return n
}

// setPressure turns MemoryPressure on or off and reports it at once.
func (k *kubelet) setPressure(on bool) {
	k.t.Helper()
	k.mu.Lock()
	k.pressure, k.since = on, metav1.Now()
	k.mu.Unlock()
	k.beat()
}

// run creates pod, waits until it is bound to the node (by the scheduler, unless it names the
// node) and marks it Running, as the kubelet would once its containers start.
func (k *kubelet) run(pod *corev1.Pod) {
	k.t.Helper()
	ctx := context.Background()
	pods := env.Client().CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		k.t.Fatal(err)
	}
	var bound *corev1.Pod
	harness.Eventually(k.t, 30*time.Second, "pod "+pod.Name+" bound to "+k.name, func() error {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Spec.NodeName != k.name {
			return fmt.Errorf("bound to %q: %+v", p.Spec.NodeName, p.Status.Conditions)
		}
		bound = p
		return nil
	})
	now := metav1.Now()
	bound.Status.Phase, bound.Status.StartTime = corev1.PodRunning, &now
	bound.Status.Conditions = append(bound.Status.Conditions,
		corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now})
	if _, err := pods.UpdateStatus(ctx, bound, metav1.UpdateOptions{}); err != nil {
		k.t.Fatalf("marking pod %s Running: %v", pod.Name, err)
	}
}
