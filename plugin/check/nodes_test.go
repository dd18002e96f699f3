package check

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// pod is a running pod created age ago with one container.
func pod(name string, age time.Duration, cpuMilli, memMi int64, limitMi int64) kube.PodFacts {
	p := kube.PodFacts{Namespace: "shop", Name: name, Created: now.Add(-age).Unix(), CPU: cpuMilli, Memory: memMi << 20}
	if limitMi == 0 {
		p.NoMemoryLimit = true
	} else {
		p.MemoryLimit = limitMi << 20
	}
	return p
}

// optedIn is a node of 4 cpu and 8Gi at cpu x2 and the given memory ratio, as the node policy
// stored it.
func optedIn(name, memoryRatio string, edit func(b *testcluster.NodeBuilder)) *corev1.Node {
	b := testcluster.Node(name)
	if edit != nil {
		edit(b)
	}
	return b.Enabled(policy.DefaultSettings(), names.CPURatioAnnotation, "2", names.MemoryRatioAnnotation, memoryRatio).Build()
}

// status lists a results' status, check and node, for comparison.
func statuses(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Status)+" "+r.Check+" "+r.Node)
	}
	return out
}

func TestNodeResults(t *testing.T) {
	forgedApplied := optedIn("node-a", "1", nil)
	forgedApplied.Annotations[names.AppliedAnnotation] = `{"policy":"static","cpuRatio":"2","memoryRatio":"1","allocatable":{"cpu":"16000m","memory":"8589934592"}}`
	rawAboveCapacity := optedIn("node-a", "1", nil)
	rawAboveCapacity.Annotations[names.RawAnnotation] = `{"allocatable":{"cpu":"1000000","memory":"8Gi"},"capacity":{"cpu":"4","memory":"8Gi"}}`
	rawOtherReserve := optedIn("node-a", "1", nil)
	rawOtherReserve.Annotations[names.RawAnnotation] = `{"allocatable":{"cpu":"3","memory":"8Gi"},"capacity":{"cpu":"4","memory":"8Gi"}}`
	unrewritten := testcluster.Node("node-a").Label(names.EnabledLabel, names.EnabledValue).Build()
	pressured := optedIn("node-a", "1", func(b *testcluster.NodeBuilder) {
		b.Condition(corev1.NodeMemoryPressure, corev1.ConditionTrue, now.Add(-3*time.Minute), now)
	})
	small := []kube.PodFacts{pod("a", 3*time.Hour, 1000, 512, 512), pod("b", 2*time.Hour, 1000, 512, 512)}
	// 6 cpu on a node whose kubelet has 4: the two newest do not fit a restart.
	big := []kube.PodFacts{pod("old", 3*time.Hour, 2000, 512, 512), pod("mid", 2*time.Hour, 2000, 512, 512), pod("new", time.Hour, 2000, 512, 512)}

	for _, tc := range []struct {
		name string
		node *corev1.Node
		pods []kube.PodFacts
		cfg  NodeConfig
		want []string
	}{
		{"healthy", optedIn("node-a", "1", nil), small, NodeConfig{Mode: kube.ModeWebhook},
			[]string{"ok records ", "ok restart-risk ", "ok pressure ", "ok memory-limits "}},
		{"pods over raw in webhook mode", optedIn("node-a", "1", nil), big, NodeConfig{Mode: kube.ModeWebhook},
			[]string{"ok records ", "fail restart-risk node-a", "ok pressure ", "ok memory-limits "}},
		{"pods over raw in policy mode", optedIn("node-a", "1", nil), big, NodeConfig{Mode: kube.ModePolicy},
			[]string{"ok records ", "warn restart-risk node-a", "ok pressure ", "ok memory-limits "}},
		{"applied differs from stored", forgedApplied, small, NodeConfig{Mode: kube.ModeWebhook},
			[]string{"fail records node-a", "ok restart-risk ", "ok pressure ", "ok memory-limits "}},
		{"raw above its capacity", rawAboveCapacity, small, NodeConfig{Mode: kube.ModeWebhook},
			[]string{"fail records node-a"}},
		{"raw of another reserve", rawOtherReserve, small, NodeConfig{Mode: kube.ModeWebhook},
			[]string{"fail records node-a"}},
		{"no records yet", unrewritten, small, NodeConfig{Mode: kube.ModeWebhook},
			[]string{"warn records node-a"}},
		{"memory pressure", pressured, small, NodeConfig{Mode: kube.ModeWebhook, Now: now},
			[]string{"ok records ", "ok restart-risk ", "warn pressure node-a", "ok memory-limits "}},
		{"memory overcommitted, a pod without a limit", optedIn("node-a", "1.5", nil),
			[]kube.PodFacts{pod("a", time.Hour, 100, 512, 0)}, NodeConfig{Mode: kube.ModeWebhook},
			[]string{"ok records ", "ok restart-risk ", "ok pressure ", "warn memory-limits node-a"}},
		{"memory overcommitted, limits within raw", optedIn("node-a", "1.5", nil),
			[]kube.PodFacts{pod("a", time.Hour, 100, 512, 4096), pod("b", time.Hour, 100, 512, 4096)}, NodeConfig{Mode: kube.ModeWebhook},
			[]string{"ok records ", "ok restart-risk ", "ok pressure ", "ok memory-limits "}},
		{"memory not overcommitted, limits over raw", optedIn("node-a", "1", nil),
			[]kube.PodFacts{pod("a", time.Hour, 100, 512, 0)}, NodeConfig{Mode: kube.ModeWebhook},
			[]string{"ok records ", "ok restart-risk ", "ok pressure ", "ok memory-limits "}},
		// 2.4 of 4 raw cpu is 60%, of the stored 8 it is 30%.
		{"autoscaler judges by the inflated allocatable", optedIn("node-a", "1", nil),
			[]kube.PodFacts{pod("a", time.Hour, 2400, 512, 512)}, NodeConfig{Mode: kube.ModeWebhook, Autoscaler: true, ScaleDownUtilization: 50},
			[]string{"ok records ", "ok restart-risk ", "ok pressure ", "ok memory-limits ", "warn autoscaler node-a"}},
		{"autoscaler: below the threshold either way", optedIn("node-a", "1", nil),
			[]kube.PodFacts{pod("a", time.Hour, 1000, 512, 512)}, NodeConfig{Mode: kube.ModeWebhook, Autoscaler: true, ScaleDownUtilization: 50},
			[]string{"ok records ", "ok restart-risk ", "ok pressure ", "ok memory-limits ", "ok autoscaler "}},
		{"autoscaler: scale-down disabled on the node", optedIn("node-a", "1", func(b *testcluster.NodeBuilder) {
			b.Annotate(autoscalerScaleDownDisabled, "true")
		}), []kube.PodFacts{pod("a", time.Hour, 2400, 512, 512)}, NodeConfig{Mode: kube.ModeWebhook, Autoscaler: true, ScaleDownUtilization: 50},
			[]string{"ok records ", "ok restart-risk ", "ok pressure ", "ok memory-limits ", "ok autoscaler "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NodeResults([]Node{{Node: tc.node, Pods: tc.pods}}, tc.cfg)
			if diff := cmp.Diff(tc.want, statuses(got)); diff != "" {
				t.Errorf("results (-want +got):\n%s\n%+v", diff, got)
			}
		})
	}
}

func TestKubeletAdmission(t *testing.T) {
	alloc := map[corev1.ResourceName]int64{corev1.ResourceCPU: 4000, corev1.ResourceMemory: 8 << 30, corev1.ResourcePods: 3}
	for _, tc := range []struct {
		name string
		pods []kube.PodFacts
		want []Rejected
	}{
		{"all fit", []kube.PodFacts{pod("a", time.Hour, 2000, 1024, 1), pod("b", time.Hour, 2000, 1024, 1)}, nil},
		// Admitted oldest first, whatever the listing order: the newest is refused.
		{"newest refused", []kube.PodFacts{pod("new", time.Minute, 2000, 1, 1), pod("old", time.Hour, 2000, 1, 1), pod("mid", 2*time.Minute, 2000, 1, 1)},
			[]Rejected{{"shop/new", "OutOfcpu"}}},
		// A smaller pod after a refused one still fits, as in the kubelet.
		{"a later small pod fits", []kube.PodFacts{pod("a", 3*time.Hour, 3000, 1, 1), pod("b", 2*time.Hour, 2000, 1, 1), pod("c", time.Hour, 1000, 1, 1)},
			[]Rejected{{"shop/b", "OutOfcpu"}}},
		{"memory", []kube.PodFacts{pod("a", 2*time.Hour, 1, 6<<10, 1), pod("b", time.Hour, 1, 4<<10, 1)}, []Rejected{{"shop/b", "OutOfmemory"}}},
		{"pods", []kube.PodFacts{pod("a", 4*time.Hour, 1, 1, 1), pod("b", 3*time.Hour, 1, 1, 1), pod("c", 2*time.Hour, 1, 1, 1), pod("d", time.Hour, 1, 1, 1)},
			[]Rejected{{"shop/d", "OutOfpods"}}},
		{"several reasons", []kube.PodFacts{pod("a", 2*time.Hour, 4000, 8<<10, 1), pod("b", time.Hour, 1, 1, 1)}, []Rejected{{"shop/b", "OutOfcpu,OutOfmemory"}}},
		// Best-effort pods request nothing: only the pod count limits them.
		{"best effort", []kube.PodFacts{pod("a", 2*time.Hour, 4000, 8<<10, 1), pod("b", time.Hour, 0, 0, 1)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, KubeletAdmission(tc.pods, alloc)); diff != "" {
				t.Errorf("rejected (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeResultsSumUpPassingNodes(t *testing.T) {
	var nodes []Node
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		nodes = append(nodes, Node{Node: optedIn(name, "1", nil)})
	}
	nodes[1].Pods = []kube.PodFacts{pod("a", 2*time.Hour, 3000, 1, 1), pod("b", time.Hour, 3000, 1, 1)}
	got := NodeResults(nodes, NodeConfig{Mode: kube.ModeWebhook})
	want := []Result{
		{Section: SectionNodes, Check: "records", Status: OK, Message: "3 of 3 opted-in nodes: the records match what is stored, and the raw allocatable is plausible"},
		{Section: SectionNodes, Check: "restart-risk", Status: OK, Message: "2 of 3 opted-in nodes: a kubelet restart at the raw allocatable would keep every pod"},
		{Section: SectionNodes, Check: "restart-risk", Node: "node-b", Status: Fail,
			Message: "a kubelet restart at the raw allocatable (cpu 4, memory 8Gi) would reject 1 of 2 pods, oldest admitted first like the kubelet; the pods request cpu 6, memory 2Mi; in webhook mode a webhook outage during the restart does this",
			Fix:     "move to policy mode where the cluster serves it (kubectl overcommit install --mode policy), keep the webhook available through kubelet restarts (two replicas and the PodDisruptionBudget of the install), or lower the node's ratio until its pods fit",
			Pods:    []string{"shop/b (OutOfcpu)"}},
		{Section: SectionNodes, Check: "pressure", Status: OK, Message: "3 of 3 opted-in nodes: no MemoryPressure, DiskPressure or PIDPressure"},
		{Section: SectionNodes, Check: "memory-limits", Status: OK, Message: "3 of 3 opted-in nodes: memory is not overcommitted, or the pods' memory limits fit the raw memory"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}
