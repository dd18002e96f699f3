package usage

import (
	"context"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// rawNode is an opted-in node as its kubelet reports it, with ratio annotations.
func rawNode(name, cpu, memory, cpuRatio, memoryRatio string) *corev1.Node {
	l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory),
		corev1.ResourcePods: resource.MustParse("110")}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{names.EnabledLabel: names.EnabledValue},
			Annotations: map[string]string{names.CPURatioAnnotation: cpuRatio, names.MemoryRatioAnnotation: memoryRatio}},
		Status: corev1.NodeStatus{Allocatable: l, Capacity: l.DeepCopy()},
	}
}

// written is n as the node policy stores it: its allocatable and both records from policy.Compute.
func written(t *testing.T, n *corev1.Node) *corev1.Node {
	t.Helper()
	s := policy.DefaultSettings()
	s.Memory.Max = policy.MustParseRatio("2")
	res := policy.Compute(policy.Input{Node: policy.NodeFrom(n), Writer: names.KubeletUser(n.Name)}, s)
	if res.AppliedRecord == "" || len(res.Warnings) > 0 {
		t.Fatalf("node %s: no records computed (%v)", n.Name, res.Warnings)
	}
	out := n.DeepCopy()
	out.Status.Allocatable, out.Status.Capacity = res.Allocatable, res.Capacity
	out.Annotations[names.RawAnnotation] = res.RawRecord
	out.Annotations[names.AppliedAnnotation] = res.AppliedRecord
	return out
}

// withAllocatable is n with its stored allocatable of name set to v, records untouched.
func withAllocatable(n *corev1.Node, name corev1.ResourceName, v string) *corev1.Node {
	out := n.DeepCopy()
	out.Status.Allocatable[name] = resource.MustParse(v)
	return out
}

func withAnnotation(n *corev1.Node, key, v string) *corev1.Node {
	out := n.DeepCopy()
	out.Annotations[key] = v
	return out
}

func withoutAnnotation(n *corev1.Node, key string) *corev1.Node {
	out := n.DeepCopy()
	delete(out.Annotations, key)
	return out
}

func gained(cpuMillis, memBytes float64) map[corev1.ResourceName]float64 {
	return map[corev1.ResourceName]float64{corev1.ResourceCPU: cpuMillis, corev1.ResourceMemory: memBytes}
}

// TestTallyNodes: stored allocatable against the applied record (by value, cpu or memory), the
// nodes without a readable record apart, and the gain summed from the raw record.
func TestTallyNodes(t *testing.T) {
	// 4 CPUs x2 and 16Gi x1.5: +4 CPUs, +8Gi.
	a := written(t, rawNode("a", "4", "16Gi", "2", "1.5"))
	// 3500m x1.5: +1750m, memory unchanged.
	b := written(t, rawNode("b", "3500m", "8Gi", "1.5", "1"))
	// Ratios of 1: recorded, nothing gained.
	c := written(t, rawNode("c", "2", "4Gi", "1", "1"))
	tests := []struct {
		name  string
		nodes []*corev1.Node
		want  NodeTally
	}{
		{"no nodes", nil, NodeTally{Gained: gained(0, 0)}},
		{"as the policy wrote them", []*corev1.Node{a, b, c}, NodeTally{OptedIn: 3, Gained: gained(5750, 8*gi)}},
		{"stored in another spelling of the same value", []*corev1.Node{withAllocatable(b, corev1.ResourceCPU, "5.25")},
			NodeTally{OptedIn: 1, Gained: gained(1750, 0)}},
		{"a write stored the raw cpu (webhook unreachable)", []*corev1.Node{withAllocatable(a, corev1.ResourceCPU, "4"), b},
			NodeTally{OptedIn: 2, Differs: 1, Gained: gained(1750, 8*gi)}},
		{"memory alone differs", []*corev1.Node{withAllocatable(a, corev1.ResourceMemory, "16Gi")},
			NodeTally{OptedIn: 1, Differs: 1, Gained: gained(4000, 0)}},
		{"compounded above the record", []*corev1.Node{withAllocatable(a, corev1.ResourceCPU, "16")},
			NodeTally{OptedIn: 1, Differs: 1, Gained: gained(12000, 8*gi)}},
		{"opted in, never written", []*corev1.Node{rawNode("new", "4", "16Gi", "2", "1"), a},
			NodeTally{OptedIn: 2, Unrecorded: 1, Gained: gained(4000, 8*gi)}},
		{"applied record unreadable", []*corev1.Node{withAnnotation(a, names.AppliedAnnotation, `{"allocatable":{"cpu":"1e3"}}`)},
			NodeTally{OptedIn: 1, Unrecorded: 1, Gained: gained(4000, 8*gi)}},
		{"applied record without resources differs", []*corev1.Node{withAnnotation(a, names.AppliedAnnotation, `{"allocatable":{}}`)},
			NodeTally{OptedIn: 1, Differs: 1, Gained: gained(4000, 8*gi)}},
		{"no raw record: recorded, no gain known", []*corev1.Node{withoutAnnotation(a, names.RawAnnotation)},
			NodeTally{OptedIn: 1, Gained: gained(0, 0)}},
		{"raw record with cpu alone", []*corev1.Node{withAnnotation(a, names.RawAnnotation, `{"allocatable":{"cpu":"4"}}`)},
			NodeTally{OptedIn: 1, Gained: gained(4000, 0)}},
		{"raw above stored: a negative gain is summed as it is", []*corev1.Node{withAnnotation(c, names.RawAnnotation, `{"allocatable":{"cpu":"3","memory":"4Gi"}}`), a},
			NodeTally{OptedIn: 2, Gained: gained(3000, 8*gi)}},
		{"absurd raw amount adds nothing", []*corev1.Node{withAnnotation(a, names.RawAnnotation, `{"allocatable":{"cpu":"9999999999999999999E","memory":"16Gi"}}`)},
			NodeTally{OptedIn: 1, Gained: gained(0, 8*gi)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, TallyNodes(tt.nodes)); diff != "" {
				t.Errorf("TallyNodes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNodeCache: the cache holds the opted-in nodes alone, stripped to their name, overcommit's
// annotations and cpu and memory allocatable.
func TestNodeCache(t *testing.T) {
	a := written(t, rawNode("a", "4", "16Gi", "2", "1"))
	a.Annotations["example.com/other"] = "dropped"
	a.Labels["topology.kubernetes.io/zone"] = "z1"
	a.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	a.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/huge:1"}, SizeBytes: 1 << 30}}
	out := rawNode("out", "4", "16Gi", "2", "1")
	delete(out.Labels, names.EnabledLabel)
	nodes := syncedCache(t, a, out)
	got := nodes.Nodes()
	want := []*corev1.Node{{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Annotations: map[string]string{
			names.CPURatioAnnotation: "2", names.MemoryRatioAnnotation: "1",
			names.RawAnnotation: a.Annotations[names.RawAnnotation], names.AppliedAnnotation: a.Annotations[names.AppliedAnnotation]}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("16Gi")}},
	}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("cached nodes (-want +got):\n%s", diff)
	}
}

// syncedCache is a node cache over a fake clientset holding objs, synced.
func syncedCache(t *testing.T, objs ...runtime.Object) *NodeCache {
	t.Helper()
	nodes := NewNodeCache(fake.NewClientset(objs...))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nodes.Run(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Synced) {
		t.Fatal("node cache never synced")
	}
	return nodes
}

// TestNodeCollector: the gauges as scraped, from a synced cache; none before it has synced.
func TestNodeCollector(t *testing.T) {
	a := written(t, rawNode("a", "4", "16Gi", "2", "1.5"))
	b := withAllocatable(written(t, rawNode("b", "3500m", "8Gi", "1.5", "1")), corev1.ResourceCPU, "3500m")
	fresh := rawNode("fresh", "2", "4Gi", "2", "1")
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewNodeCollector(syncedCache(t, a, b, fresh)))
	want := `
# HELP overcommit_nodes_allocatable_drift Opted-in nodes whose stored allocatable is not the node policy's, by state: differs (stored cpu or memory allocatable is not what overcommit.dev/applied records: a write was stored without the policy), unrecorded (no readable overcommit.dev/applied: opted in and not written since).
# TYPE overcommit_nodes_allocatable_drift gauge
overcommit_nodes_allocatable_drift{state="differs"} 1
overcommit_nodes_allocatable_drift{state="unrecorded"} 1
# HELP overcommit_nodes_capacity_gained Stored allocatable minus the kubelet's own (overcommit.dev/raw), summed over the opted-in nodes: cores for cpu, bytes for memory.
# TYPE overcommit_nodes_capacity_gained gauge
overcommit_nodes_capacity_gained{resource="cpu",unit="core"} 4
overcommit_nodes_capacity_gained{resource="memory",unit="byte"} 8.589934592e+09
# HELP overcommit_nodes_opted_in Nodes labelled overcommit.dev/enabled=true, from the webhook's node cache.
# TYPE overcommit_nodes_opted_in gauge
overcommit_nodes_opted_in 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	unsynced := prometheus.NewRegistry()
	unsynced.MustRegister(NewNodeCollector(NewNodeCache(fake.NewClientset(a))))
	if n, err := testutil.GatherAndCount(unsynced); err != nil || n != 0 {
		t.Errorf("before the cache synced: %d series (%v), want none", n, err)
	}
}

// BenchmarkTallyNodes is the cost of one scrape of the node gauges at 5,000 opted-in nodes (each
// replica's /metrics, every scrape interval), and what the node cache holds for them: the heap of
// 5,000 nodes as stripNode keeps them (heap-bytes/node).
func BenchmarkTallyNodes(b *testing.B) {
	t := &testing.T{}
	var nodes []*corev1.Node
	for i := range 5000 {
		n := written(t, rawNode("node-"+strconv.Itoa(i), "16", "64Gi", "2", "1.5"))
		n.Annotations[names.RequestsAnnotation] = policy.FormatRequests(corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("12"), corev1.ResourceMemory: resource.MustParse("40Gi")})
		nodes = append(nodes, n)
	}
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got := TallyNodes(nodes); got.OptedIn != len(nodes) || got.Differs+got.Unrecorded != 0 {
				b.Fatalf("tally %+v", got)
			}
		}
	})
	// A scrape of the collector: the nodes' records unchanged since the last one, their objects
	// new (as after the kubelets' status writes).
	b.Run("scrape", func(b *testing.B) {
		c := NewNodeCollector(nil).(*nodeCollector)
		c.tally(nodes)
		again := make([]*corev1.Node, len(nodes))
		for i, n := range nodes {
			again[i] = n.DeepCopy()
		}
		b.ReportAllocs()
		for b.Loop() {
			if got := c.tally(again); got.OptedIn != len(nodes) {
				b.Fatalf("tally %+v", got)
			}
		}
	})
	b.Run("cache", func(b *testing.B) {
		for b.Loop() {
		}
		heap(b, nodes)
	})
}

// heap reports what the node cache holds for nodes, in bytes per node: each node's strings
// copied first, as the decoder allocates them for each object, so that what the stripped node
// keeps of them counts.
func heap(b *testing.B, nodes []*corev1.Node) {
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	stripped := make([]any, len(nodes))
	for i, n := range nodes {
		decoded := n.DeepCopy()
		decoded.Name = strings.Clone(n.Name)
		decoded.Annotations = map[string]string{}
		for k, v := range n.Annotations {
			decoded.Annotations[strings.Clone(k)] = strings.Clone(v)
		}
		stripped[i], _ = stripNode(decoded)
	}
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	goruntime.KeepAlive(stripped)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(nodes)), "heap-bytes/node")
}
