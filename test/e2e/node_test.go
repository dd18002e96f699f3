//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// isolatedNode creates a kwok node that only this test's pods use: it carries a NoSchedule taint
// named for it, so pods of tests running in parallel never land on it.
func isolatedNode(t *testing.T, name, cpu, memory string) *corev1.Node {
	t.Helper()
	newKwokNode(t, name, cpu, memory, nil)
	mustKubectl(t, "taint", "node", name, "e2e.overcommit.dev/owner="+name+":NoSchedule")
	return getNode(t, name)
}

// podOn returns a pod pinned to an isolated node, requesting cpu and using usageCPU (kwok).
func podOn(node, name, cpu, usageCPU string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Annotations: map[string]string{cluster.KwokUsageCPUAnnotation: usageCPU, cluster.KwokUsageMemoryAnnotation: "64Mi"}},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"kubernetes.io/hostname": node},
			Tolerations:  []corev1.Toleration{{Key: "e2e.overcommit.dev/owner", Operator: corev1.TolerationOpEqual, Value: node, Effect: corev1.TaintEffectNoSchedule}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Mi")}}}},
		},
	}
}

func createPods(t *testing.T, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if _, err := kube(t).CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s: %v", p.Name, err)
		}
		name := p.Name
		t.Cleanup(func() {
			zero := int64(0)
			_ = kube(t).CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		})
	}
}

// optIn labels and annotates a node with the real kubectl, then triggers a status write so the
// webhook applies the policy now instead of at the next kubelet report.
func optIn(t *testing.T, node string, ann ...string) {
	t.Helper()
	mustKubectl(t, "label", "node", node, names.EnabledLabel+"=true", "--overwrite")
	if len(ann) > 0 {
		mustKubectl(t, append([]string{"annotate", "node", node, "--overwrite"}, ann...)...)
	}
	mustKubectl(t, "patch", "node", node, "--subresource=status", "--type=merge", "-p", `{"status":{}}`)
}

func cpuOf(n *corev1.Node) (alloc, capacity string) {
	return n.Status.Allocatable.Cpu().String(), n.Status.Capacity.Cpu().String()
}

func waitCPU(t *testing.T, node, alloc string) *corev1.Node {
	t.Helper()
	var n *corev1.Node
	harness.Eventually(t, 30*time.Second, "node "+node+" allocatable cpu "+alloc, func() error {
		n = getNode(t, node)
		if got, _ := cpuOf(n); got != alloc {
			return fmt.Errorf("allocatable cpu %s", got)
		}
		return nil
	})
	return n
}

func TestNodeStaticPolicy(t *testing.T) {
	t.Parallel()
	isolatedNode(t, "static-1", "4", "16Gi")
	optIn(t, "static-1", names.CPURatioAnnotation+"=2")
	n := waitCPU(t, "static-1", "8")
	if _, c := cpuOf(n); c != "8" {
		t.Errorf("capacity cpu = %s, want 8 (moved by the same 4)", c)
	}
	if m := n.Status.Allocatable.Memory().String(); m != "16Gi" {
		t.Errorf("allocatable memory = %s, want 16Gi untouched", m)
	}
	raw, err := policy.ParseRaw(n.Annotations[names.RawAnnotation])
	if err != nil || raw.Allocatable.Cpu().String() != "4" || raw.Capacity.Cpu().String() != "4" {
		t.Errorf("raw annotation %q (%v): want the kubelet's 4 CPUs", n.Annotations[names.RawAnnotation], err)
	}
	applied, err := policy.ParseApplied(n.Annotations[names.AppliedAnnotation])
	if err != nil || applied.Allocatable.Cpu().String() != "8" || applied.CPURatio != "2" || applied.Policy != "static" {
		t.Errorf("applied annotation %q (%v)", n.Annotations[names.AppliedAnnotation], err)
	}
}

// heartbeatTime is the Ready condition's last heartbeat: kwok's conditions-only status patch sets it.
func heartbeatTime(n *corev1.Node) time.Time {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.LastHeartbeatTime.Time
		}
	}
	return time.Time{}
}

func TestNodeNoCompounding(t *testing.T) {
	t.Parallel()
	isolatedNode(t, "compound-1", "4", "16Gi")
	optIn(t, "compound-1", names.CPURatioAnnotation+"=1.5", names.MemoryRatioAnnotation+"=1.25")
	first := waitCPU(t, "compound-1", "6")
	wantMem := first.Status.Allocatable.Memory().String()
	if wantMem != "20Gi" {
		t.Fatalf("memory = %s, want 20Gi", wantMem)
	}

	beats := map[time.Time]bool{}
	deadline := time.Now().Add(2 * time.Minute)
	kubectlPatches := 0
	for len(beats) < 12 || kubectlPatches < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("saw only %d heartbeats and %d kubectl patches", len(beats), kubectlPatches)
		}
		n := getNode(t, "compound-1")
		beats[heartbeatTime(n)] = true
		if a, c := cpuOf(n); a != "6" || c != "6" || n.Status.Allocatable.Memory().String() != wantMem {
			t.Fatalf("after %d heartbeats and %d kubectl status patches: cpu %s/%s memory %s, want 6/6 and %s",
				len(beats), kubectlPatches, a, c, n.Status.Allocatable.Memory(), wantMem)
		}
		if len(beats)%4 == 0 && kubectlPatches < len(beats)/4 {
			// Writers that carry no allocatable: an annotation and a condition through the status subresource.
			mustKubectl(t, "patch", "node", "compound-1", "--subresource=status", "--type=merge",
				"-p", fmt.Sprintf(`{"metadata":{"annotations":{"e2e.overcommit.dev/touch":"%d"}}}`, kubectlPatches))
			mustKubectl(t, "patch", "node", "compound-1", "--subresource=status", "--type=strategic",
				"-p", `{"status":{"conditions":[{"type":"E2ETouched","status":"True","reason":"Test"}]}}`)
			kubectlPatches++
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("allocatable stayed exact over %d kwok heartbeats and %d kubectl status patches", len(beats), 2*kubectlPatches)
}

// TestNodeRealKubelet runs the kubelet's own code (kubemark): its node-status loop re-sends its
// raw allocatable every 10s once the stored value differs, and it admits pods against the stored
// (overcommitted) allocatable.
func TestNodeRealKubelet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, err := env.StartKubelet(ctx, "hollow-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.Stop()
		_ = kube(t).CoreV1().Nodes().Delete(context.Background(), "hollow-1", metav1.DeleteOptions{})
	})
	mustKubectl(t, "taint", "node", "hollow-1", "e2e.overcommit.dev/owner=hollow-1:NoSchedule")
	raw := getNode(t, "hollow-1")
	rawCPU := raw.Status.Allocatable.Cpu().MilliValue()
	optIn(t, "hollow-1", names.CPURatioAnnotation+"=2")
	want := resource.NewMilliQuantity(2*rawCPU, resource.DecimalSI).String()
	waitCPU(t, "hollow-1", want)

	// Watch the kubelet's own status writes: each must store exactly raw x 2.
	w, err := kube(t).CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "hollow-1").String()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	writes := 0
	timeout := time.After(150 * time.Second)
	for writes < 7 { // the first event is the current state
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Modified && ev.Type != watch.Added {
				continue
			}
			n := ev.Object.(*corev1.Node)
			if got := n.Status.Allocatable.Cpu().String(); got != want {
				t.Fatalf("after %d kubelet status writes: allocatable cpu %s, want %s", writes, got, want)
			}
			writes++
		case <-timeout:
			t.Fatalf("only %d node writes in 150s", writes)
		}
	}
	t.Logf("allocatable stayed %s over %d status writes of the real kubelet", want, writes-1)

	// A pod that needs more than the raw allocatable but fits the overcommitted one.
	pod := podOn("hollow-1", "big-on-hollow", resource.NewMilliQuantity(rawCPU*3/2, resource.DecimalSI).String(), "100m")
	createPods(t, pod)
	harness.Eventually(t, 90*time.Second, "the pod running on the hollow kubelet", func() error {
		p, err := kube(t).CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase == corev1.PodFailed {
			t.Fatalf("kubelet rejected the pod: %s %s", p.Status.Reason, p.Status.Message)
		}
		if p.Spec.NodeName != "hollow-1" || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("node %q phase %s", p.Spec.NodeName, p.Status.Phase)
		}
		return nil
	})
}

func TestNodeKubeletStylePatchRecomputes(t *testing.T) {
	t.Parallel()
	isolatedNode(t, "resize-1", "4", "16Gi")
	optIn(t, "resize-1", names.CPURatioAnnotation+"=2")
	waitCPU(t, "resize-1", "8")
	// What a kubelet sends after a resize: its full raw view as a strategic merge patch.
	mustKubectl(t, "patch", "node", "resize-1", "--subresource=status", "--type=strategic", "-p",
		`{"status":{"allocatable":{"cpu":"6","memory":"16Gi","pods":"110"},"capacity":{"cpu":"6","memory":"16Gi","pods":"110"}}}`)
	n := waitCPU(t, "resize-1", "12")
	if _, c := cpuOf(n); c != "12" {
		t.Errorf("capacity cpu %s, want 12", c)
	}
	if raw, _ := policy.ParseRaw(n.Annotations[names.RawAnnotation]); raw.Allocatable.Cpu().String() != "6" {
		t.Errorf("raw annotation %s, want cpu 6", n.Annotations[names.RawAnnotation])
	}
}

func TestNodeNotOptedInIsNeverSent(t *testing.T) {
	t.Parallel()
	n := isolatedNode(t, "plain-1", "4", "16Gi")
	mustKubectl(t, "annotate", "node", "plain-1", names.CPURatioAnnotation+"=2") // annotation without the label
	for i := 0; i < 3; i++ {
		mustKubectl(t, "patch", "node", "plain-1", "--subresource=status", "--type=merge", "-p", `{"status":{}}`)
	}
	start := heartbeatTime(getNode(t, "plain-1"))
	harness.Eventually(t, 30*time.Second, "a few kwok heartbeats", func() error {
		if heartbeatTime(getNode(t, "plain-1")).Sub(start) < 2*heartbeat {
			return fmt.Errorf("no new heartbeat yet")
		}
		return nil
	})
	got := getNode(t, "plain-1")
	if a, _ := cpuOf(got); a != n.Status.Allocatable.Cpu().String() {
		t.Errorf("allocatable cpu changed to %s", a)
	}
	if _, ok := got.Annotations[names.AppliedAnnotation]; ok {
		t.Errorf("a node without the label was recorded as overcommitted")
	}
	// The objectSelector keeps the apiserver from calling the webhook at all: its debug log
	// names every node it reviews.
	log, err := os.ReadFile(env.LogFile("overcommit-webhook"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), `"node":"plain-1"`) {
		t.Errorf("the webhook was called for a node without the opt-in label")
	}
	if !strings.Contains(string(log), `"msg":"node review"`) {
		t.Errorf("the webhook log has no reviews at all; the check above proves nothing")
	}
}

// TestNodeWebhookDown kills the webhook: status writes keep succeeding (failurePolicy Ignore), and
// once it is back the next heartbeat is overcommitted again. Not parallel: it stops the webhook.
func TestNodeWebhookDown(t *testing.T) {
	ctx := context.Background()
	isolatedNode(t, "down-1", "4", "16Gi")
	optIn(t, "down-1", names.CPURatioAnnotation+"=2")
	waitCPU(t, "down-1", "8")

	if err := env.StopWebhook(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := env.StartWebhook(context.Background()); err != nil {
				t.Errorf("restarting the webhook: %v", err)
			}
		}
	})
	// The kubelet re-sends its raw view while the webhook is down: stored as sent.
	_, err := kube(t).CoreV1().Nodes().Patch(ctx, "down-1", types.StrategicMergePatchType,
		[]byte(`{"status":{"allocatable":{"cpu":"4"},"capacity":{"cpu":"4"}}}`), metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatalf("status write failed while the webhook is down: %v", err)
	}
	waitCPU(t, "down-1", "4")
	before := heartbeatTime(getNode(t, "down-1"))
	harness.Eventually(t, 30*time.Second, "kwok heartbeats succeeding without the webhook", func() error {
		if heartbeatTime(getNode(t, "down-1")).Sub(before) < 2*heartbeat {
			return fmt.Errorf("heartbeat stuck at %s", heartbeatTime(getNode(t, "down-1")))
		}
		return nil
	})

	if err := env.StartWebhook(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// No trigger from us: kwok's next heartbeat goes through the webhook again.
	waitCPU(t, "down-1", "8")
}

// TestNodeUsagePolicy runs the usage policy on real metrics-server data (kwok reports pod usage
// from annotations), then stops metrics-server: once samples are older than the settings' metricsMaxAgeSeconds
// (40s here) the node falls back to its raw allocatable. Not parallel: it stops metrics-server.
func TestNodeUsagePolicy(t *testing.T) {
	ctx := context.Background()
	isolatedNode(t, "usage-1", "10", "32Gi")
	var pods []*corev1.Pod
	for i := 0; i < 4; i++ { // requests 8 CPUs, uses 2
		pods = append(pods, podOn("usage-1", fmt.Sprintf("usage-pod-%d", i), "2", "500m"))
	}
	createPods(t, pods...)
	optIn(t, "usage-1", names.PolicyAnnotation+"=usage", names.CPURatioAnnotation+"=2")

	// A = 10, R = 8, U ~ 2 (rates wobble a little), m = 0.2: A' = A + R - 1.2U ~ 15.6 CPUs,
	// within [A, 2A].
	harness.Eventually(t, 3*time.Minute, "usage policy reclaiming unused requests", func() error {
		mustKubectl(t, "patch", "node", "usage-1", "--subresource=status", "--type=merge", "-p", `{"status":{}}`)
		n := getNode(t, "usage-1")
		got := n.Status.Allocatable.Cpu().MilliValue()
		if got < 15_000 || got > 16_000 {
			return fmt.Errorf("allocatable cpu %dm, want about 15600m", got)
		}
		return nil
	})
	applied, _ := policy.ParseApplied(getNode(t, "usage-1").Annotations[names.AppliedAnnotation])
	if applied.Policy != "usage" {
		t.Errorf("applied policy %q", applied.Policy)
	}

	if err := env.StopMetricsServer(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.StartMetricsServer(context.Background()); err != nil {
			t.Errorf("restarting metrics-server: %v", err)
		}
	})
	// kwok heartbeats keep arriving; once the last sample is 40s old they keep the raw 10 CPUs.
	harness.Eventually(t, 2*time.Minute, "fallback to the raw allocatable", func() error {
		n := getNode(t, "usage-1")
		if got := n.Status.Allocatable.Cpu().String(); got != "10" {
			return fmt.Errorf("allocatable cpu %s", got)
		}
		return nil
	})
	// The webhook said why: its fallback counter moved.
	metrics, err := env.WebhookMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, "overcommit_node_usage_fallbacks_total") || strings.Contains(metrics, "overcommit_node_usage_fallbacks_total 0\n") {
		t.Errorf("no usage fallback counted:\n%s", grep(metrics, "fallback"))
	}
}

func TestNodeSchedulingAfterOptIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	isolatedNode(t, "sched-1", "2", "8Gi")
	createPods(t, podOn("sched-1", "sched-a", "1", "100m"), podOn("sched-1", "sched-b", "1", "100m"), podOn("sched-1", "sched-c", "1", "100m"))
	var pending string
	harness.Eventually(t, time.Minute, "two pods bound and one Pending with Insufficient cpu", func() error {
		bound := 0
		for _, name := range []string{"sched-a", "sched-b", "sched-c"} {
			p, err := kube(t).CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Spec.NodeName != "" {
				bound++
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, "Insufficient cpu") {
					pending = name
				}
			}
		}
		if bound != 2 || pending == "" {
			return fmt.Errorf("%d bound, pending=%q", bound, pending)
		}
		return nil
	})
	optIn(t, "sched-1", names.CPURatioAnnotation+"=2")
	harness.Eventually(t, time.Minute, "the pending pod bound after opt-in", func() error {
		p, err := kube(t).CoreV1().Pods("default").Get(ctx, pending, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Spec.NodeName != "sched-1" {
			return fmt.Errorf("still pending")
		}
		return nil
	})
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
