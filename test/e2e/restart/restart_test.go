//go:build e2e

package restart

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

const (
	// podCPU is each pod's cpu request in millicores: three of them need 1800m, more than a
	// hollow kubelet's raw 1000m and less than its 2000m at cpu x2.
	podCPU  = 600
	podsPer = 3
	// outOfCPU is the reason the kubelet's admission gives a pod it rejects for cpu
	// (pkg/kubelet/lifecycle.OutOfCPU).
	outOfCPU = "OutOfcpu"
	// settleTimeout bounds the wait for the restarted kubelet to re-admit every pod.
	settleTimeout = 90 * time.Second
	// hold is how long the outcome must stay as it is after that: two of the kubelet's 10 s
	// status rounds, so a late rejection or a late raw allocatable shows.
	hold = 25 * time.Second
)

// TestRestartPolicyModeWebhookKilled: in policy mode the apiserver rewrites the kubelet's status
// itself, so a restart with the webhook process dead keeps the overcommitted allocatable and
// every pod admitted on it.
func TestRestartPolicyModeWebhookKilled(t *testing.T) {
	usePolicyMode(t)
	o := restartScenario(t, "hollow-policy", func(t *testing.T) { stopWebhook(t) })
	t.Logf("policy mode, webhook killed: %s", o)
	o.expectAllKept(t)
}

// TestRestartWebhookModeWebhookUp: the webhook rewrites the restarted kubelet's raw report, so
// the pods stay admitted.
func TestRestartWebhookModeWebhookUp(t *testing.T) {
	useWebhookMode(t)
	o := restartScenario(t, "hollow-webhook", nil)
	t.Logf("webhook mode, webhook up: %s", o)
	o.expectAllKept(t)
}

// TestRestartWebhookModeWebhookDown documents the danger of webhook mode: with the webhook
// unreachable (failurePolicy Ignore) the restarted kubelet's raw allocatable is stored as sent,
// and its admission, against that value, rejects the pods that no longer fit. The test records
// what happens and fails only on an observation that contradicts itself.
func TestRestartWebhookModeWebhookDown(t *testing.T) {
	useWebhookMode(t)
	o := restartScenario(t, "hollow-down", func(t *testing.T) { stopWebhook(t) })
	t.Logf("webhook mode, webhook unreachable: %s", o)
	if o.other > 0 {
		t.Fatalf("%d pods neither Running nor Failed %s after the restart", o.other, settleTimeout+hold)
	}
	if o.denied != o.reasons[outOfCPU] {
		t.Errorf("%d pods Failed with %s, but the restarted kubelet logged %d such admission denials", o.reasons[outOfCPU], outOfCPU, o.denied)
	}
	for reason, n := range o.reasons {
		if reason != outOfCPU {
			t.Errorf("%d pods failed with reason %q, not %s: %v", n, reason, outOfCPU, o.messages)
		}
	}
	// The kubelet admits in creation order against the allocatable it reads: first fit.
	fit := min(int64(podsPer), o.allocatable/podCPU)
	if o.failed > 0 && int64(o.running) != fit {
		t.Errorf("%d pods running next to %d rejected for cpu, but %dm allocatable holds %d of %dm",
			o.running, o.failed, o.allocatable, fit, podCPU)
	}
	switch {
	case o.failed > 0 && o.allocatable < podsPer*podCPU:
		t.Logf("DANGER confirmed: the restart stored the raw %dm and the kubelet rejected %d of %d running pods (%s)",
			o.allocatable, o.failed, podsPer, reasonList(o.reasons))
	case o.failed == 0:
		t.Logf("no pod rejected this time: the kubelet re-admitted its pods before its raw allocatable (now %dm) was stored", o.allocatable)
	}
}

// observation is the state after a kubelet restart.
type observation struct {
	running, failed, other int
	reasons                map[string]int // failed pods by status.reason
	messages               []string       // failed pods' status.message
	denied                 int            // "Pod admission denied" reason="OutOfcpu" in the restarted kubelet's log
	allocatable            int64          // node allocatable cpu (millicores) at the end
	allocSeen              []int64        // every allocatable cpu seen after the restart
	leftRunning            []string       // pods seen re-admitted and Running, later not Running
	settled                time.Duration  // from the restart's start to every pod re-admitted or rejected
}

func (o observation) String() string {
	return fmt.Sprintf("%d/%d pods Running, %d Failed (%s), %d other; allocatable cpu %dm (seen after the restart: %v); %d %s admission denials in the restarted kubelet's log; settled %s after the restart began",
		o.running, podsPer, o.failed, reasonList(o.reasons), o.other, o.allocatable, o.allocSeen, o.denied, outOfCPU, o.settled.Round(100*time.Millisecond))
}

func (o observation) expectAllKept(t *testing.T) {
	t.Helper()
	if o.running != podsPer {
		t.Errorf("after the kubelet restart %d of %d pods Running, %d Failed: %v", o.running, podsPer, o.failed, o.messages)
	}
	if len(o.leftRunning) > 0 {
		t.Errorf("pods left Running during the hold: %v", o.leftRunning)
	}
	if o.denied > 0 {
		t.Errorf("the restarted kubelet logged %d admission denials for cpu", o.denied)
	}
	if !slices.Equal(o.allocSeen, []int64{2 * 1000}) {
		t.Errorf("allocatable cpu after the restart: seen %v millicores, want only 2000", o.allocSeen)
	}
}

func reasonList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for r, n := range m {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// restartScenario runs a hollow kubelet, opts its node in at cpu x2, runs three pods of 600m on
// it, calls beforeRestart (nil: nothing), restarts the kubelet and observes the outcome.
func restartScenario(t *testing.T, node string, beforeRestart func(t *testing.T)) observation {
	t.Helper()
	ctx := context.Background()
	cs := env.Client()
	k, err := env.StartKubelet(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	var podNames []string
	t.Cleanup(func() {
		ctx := context.Background()
		zero := int64(0)
		for _, p := range podNames {
			_ = cs.CoreV1().Pods("default").Delete(ctx, p, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}
		if k != nil {
			_ = k.Stop()
		}
		_ = cs.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{})
		if t.Failed() {
			t.Logf("kubelet log: %s", env.LogFile("kubelet-"+node))
		}
	})

	raw := nodeCPU(t, node)
	if raw != 1000 {
		t.Fatalf("hollow kubelet %s reports %dm allocatable cpu, the scenario is built for 1000m", node, raw)
	}
	optIn(t, node)
	harness.Eventually(t, 30*time.Second, "allocatable cpu 2000m on "+node, func() error {
		if got := nodeCPU(t, node); got != 2*raw {
			return fmt.Errorf("allocatable cpu %dm", got)
		}
		return nil
	})

	for i := range podsPer {
		p := pod(node, fmt.Sprintf("%s-%d", node, i))
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s: %v", p.Name, err)
		}
		podNames = append(podNames, p.Name)
	}
	started := map[string]metav1.Time{}
	harness.Eventually(t, 90*time.Second, "three pods Running on "+node, func() error {
		for _, name := range podNames {
			p := getPod(t, name)
			if p.Status.Phase == corev1.PodFailed {
				t.Fatalf("before any restart the kubelet rejected %s: %s %s", name, p.Status.Reason, p.Status.Message)
			}
			at, ok := runningSince(p)
			if p.Status.Phase != corev1.PodRunning || !ok {
				return fmt.Errorf("pod %s %s", name, p.Status.Phase)
			}
			started[name] = at
		}
		return nil
	})
	t.Logf("%d pods of %dm Running on %s (raw %dm, allocatable %dm)", podsPer, podCPU, node, raw, 2*raw)

	if beforeRestart != nil {
		beforeRestart(t)
	}
	begin := time.Now()
	nk, err := k.Restart(ctx)
	k = nk
	if err != nil {
		t.Fatal(err)
	}

	var o observation
	seen := func() {
		a := nodeCPU(t, node)
		if !slices.Contains(o.allocSeen, a) {
			o.allocSeen = append(o.allocSeen, a)
		}
	}
	// Every pod either rejected (Failed) or started again in the new kubelet's runtime.
	readmitted := map[string]bool{}
	harness.Eventually(t, settleTimeout, "the restarted kubelet re-admitting or rejecting every pod", func() error {
		seen()
		var waiting []string
		for _, name := range podNames {
			p := getPod(t, name)
			at, ok := runningSince(p)
			switch {
			case p.Status.Phase == corev1.PodFailed:
			case p.Status.Phase == corev1.PodRunning && ok && !at.Equal(ptr(started[name])):
				readmitted[name] = true
			default:
				waiting = append(waiting, fmt.Sprintf("%s (%s, running since %v)", name, p.Status.Phase, at))
			}
		}
		if len(waiting) > 0 {
			return fmt.Errorf("still as before the restart: %v", waiting)
		}
		return nil
	})
	o.settled = time.Since(begin)

	deadline := time.Now().Add(hold)
	for time.Now().Before(deadline) {
		seen()
		for name := range readmitted {
			if p := getPod(t, name); p.Status.Phase != corev1.PodRunning && !slices.Contains(o.leftRunning, name) {
				o.leftRunning = append(o.leftRunning, fmt.Sprintf("%s: %s %s %s", name, p.Status.Phase, p.Status.Reason, p.Status.Message))
			}
		}
		time.Sleep(time.Second)
	}

	o.reasons = map[string]int{}
	for _, name := range podNames {
		p := getPod(t, name)
		switch p.Status.Phase {
		case corev1.PodRunning:
			o.running++
		case corev1.PodFailed:
			o.failed++
			o.reasons[p.Status.Reason]++
			o.messages = append(o.messages, name+": "+p.Status.Message)
		default:
			o.other++
		}
	}
	o.allocatable = nodeCPU(t, node)
	// kubemark's hollow kubelet records events with a fake recorder, so its log is the
	// kubelet's own account of each rejection.
	o.denied = admissionDenials(t, k.LogFile(), outOfCPU)
	for _, m := range o.messages {
		t.Logf("rejected: %s", m)
	}
	return o
}

// optIn labels and annotates the node (cpu x2), then writes its status so that the node policy
// applies now instead of at the kubelet's next report.
func optIn(t *testing.T, node string) {
	t.Helper()
	ctx := context.Background()
	meta, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      map[string]string{names.EnabledLabel: names.EnabledValue},
		"annotations": map[string]string{names.CPURatioAnnotation: "2"},
	}})
	nodes := env.Client().CoreV1().Nodes()
	if _, err := nodes.Patch(ctx, node, types.MergePatchType, meta, metav1.PatchOptions{}); err != nil {
		t.Fatalf("opting %s in: %v", node, err)
	}
	if _, err := nodes.Patch(ctx, node, types.MergePatchType, []byte(`{"status":{}}`), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("touching the status of %s: %v", node, err)
	}
}

func pod(node, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			// Bound directly: the kubelet's own admission is the subject.
			NodeName: node,
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    *resource.NewMilliQuantity(podCPU, resource.DecimalSI),
					corev1.ResourceMemory: resource.MustParse("64Mi"),
				}}}},
		},
	}
}

// runningSince returns when the pod's container started running, as its kubelet reported it.
func runningSince(p *corev1.Pod) (metav1.Time, bool) {
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Running != nil {
			return s.State.Running.StartedAt, true
		}
	}
	return metav1.Time{}, false
}

func getPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	p, err := env.Client().CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting pod %s: %v", name, err)
	}
	return p
}

// nodeCPU returns the node's allocatable cpu in millicores.
func nodeCPU(t *testing.T, node string) int64 {
	t.Helper()
	n, err := env.Client().CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting node %s: %v", node, err)
	}
	return n.Status.Allocatable.Cpu().MilliValue()
}

// admissionDenials counts the kubelet's "Pod admission denied" lines with the given reason in
// its latest start (the log is appended to on a restart).
func admissionDenials(t *testing.T, logFile, reason string) int {
	t.Helper()
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("reading the kubelet log: %v", err)
	}
	if i := bytes.LastIndex(data, []byte("\n### ")); i >= 0 {
		data = data[i:]
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, `"Pod admission denied"`) && strings.Contains(line, `reason="`+reason+`"`) {
			n++
		}
	}
	return n
}

func ptr[T any](v T) *T { return &v }
