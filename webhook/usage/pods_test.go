package usage

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/overcommit-dev/overcommit/shared/requests"
)

func testPod(name, node, cpu, mem string) *corev1.Pod {
	always := corev1.ContainerRestartPolicyAlways
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName: node,
			InitContainers: []corev1.Container{{Name: "sidecar", RestartPolicy: &always,
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}}},
			Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}}},
			Overhead: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Mi")},
		},
	}
}

// want sums requests.Pod over the pods per node: the figure the cache must match exactly.
func want(pods ...*corev1.Pod) map[string]requests.Amount {
	out := map[string]requests.Amount{}
	for _, p := range pods {
		out[p.Spec.NodeName] = out[p.Spec.NodeName].Add(requests.Pod(p))
	}
	return out
}

func checkSums(t *testing.T, c *podCache, nodes []string, pods ...*corev1.Pod) {
	t.Helper()
	w := want(pods...)
	for _, n := range nodes {
		got, err := c.requests(n)
		if err != nil {
			t.Fatalf("requests(%s): %v", n, err)
		}
		if got != w[n] {
			t.Errorf("node %s: got %+v, want %+v", n, got, w[n])
		}
	}
	if got := c.count(); got != len(pods) {
		t.Errorf("count() = %d, want %d", got, len(pods))
	}
}

func record(t *testing.T, c *podCache, p *corev1.Pod) *podRecord {
	t.Helper()
	obj, err := c.stripPod(p)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := obj.(*podRecord)
	if !ok {
		t.Fatalf("stripPod returned %T", obj)
	}
	return r
}

func TestPodCacheHandler(t *testing.T) {
	c := &podCache{byKey: map[string]*podRecord{}, nodes: map[string]*nodeSum{}}
	nodes := []string{"n1", "n2", "n3"}
	a, b, d := testPod("a", "n1", "250m", "512Mi"), testPod("b", "n1", "1", "1Gi"), testPod("d", "n2", "100m", "64Mi")

	c.add(record(t, c, a))
	c.add(record(t, c, b))
	c.add(record(t, c, d))
	checkSums(t, c, nodes, a, b, d)

	// An update replaces what the pod added; a resync (the same object again) changes nothing.
	b2 := testPod("b", "n1", "2", "1Gi")
	c.add(record(t, c, b2))
	c.add(record(t, c, b2))
	checkSums(t, c, nodes, a, b2, d)

	// A deletion subtracts what was added, whatever requests the final state carries.
	final := testPod("b", "n1", "7", "9Gi")
	final.Status.Phase = corev1.PodSucceeded
	c.remove(record(t, c, final))
	checkSums(t, c, nodes, a, d)

	// A tombstone from a relist is found by its key.
	c.remove(cache.DeletedFinalStateUnknown{Key: "ns/d", Obj: record(t, c, d)})
	checkSums(t, c, nodes, a)

	// Deleting what was never added, or twice, changes nothing.
	c.remove(record(t, c, d))
	checkSums(t, c, nodes, a)

	// The last pod leaving drops the node's sum; a new pod starts it again from zero.
	c.remove(record(t, c, a))
	checkSums(t, c, nodes)
	if len(c.nodes) != 0 {
		t.Errorf("sums left for nodes without pods: %v", c.nodes)
	}
	e := testPod("e", "n1", "300m", "1Gi")
	c.add(record(t, c, e))
	checkSums(t, c, nodes, e)

	// Other objects are ignored.
	c.add("not a pod")
	c.remove(42)
	checkSums(t, c, nodes, e)
}

func TestStripPodSharesNodeNames(t *testing.T) {
	c := &podCache{byKey: map[string]*podRecord{}, nodes: map[string]*nodeSum{}}
	c.add(record(t, c, testPod("a", "node-1", "1", "1Gi")))
	r := record(t, c, testPod("b", string([]byte("node-1")), "1", "1Gi"))
	if r.node != "node-1" || c.nodes["node-1"].name != r.node {
		t.Fatalf("record node %q", r.node)
	}
	if key := r.GetObjectMeta(); key.GetNamespace() != "ns" || key.GetName() != "b" {
		t.Errorf("GetObjectMeta() = %s/%s, want ns/b", key.GetNamespace(), key.GetName())
	}
	if k, err := cache.MetaNamespaceKeyFunc(r); err != nil || k != "ns/b" {
		t.Errorf("store key = %q, %v; want ns/b", k, err)
	}
}

// TestPodCacheInformer runs the informer against a fake clientset: the initial list, then
// watched creations, updates and deletions, compared with requests.Pod after each step.
func TestPodCacheInformer(t *testing.T) {
	var initial []*corev1.Pod
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 20 {
		p := testPod(fmt.Sprintf("p%02d", i), fmt.Sprintf("n%d", i%3), fmt.Sprintf("%dm", 100+i), fmt.Sprintf("%dMi", 64*(i+1)))
		if _, err := client.CoreV1().Pods("ns").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		initial = append(initial, p)
	}
	c, err := newPodCache(client, 0)
	if err != nil {
		t.Fatal(err)
	}
	go c.run(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		t.Fatal("pod cache never synced")
	}
	nodes := []string{"n0", "n1", "n2", "n3"}
	checkSums(t, c, nodes, initial...)

	// Watched changes: one more pod, one resized, one deleted.
	extra := testPod("extra", "n3", "2", "2Gi")
	if _, err := client.CoreV1().Pods("ns").Create(ctx, extra, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	resized := testPod("p05", "n2", "3", "3Gi")
	if _, err := client.CoreV1().Pods("ns").Update(ctx, resized, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Pods("ns").Delete(ctx, "p07", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var now []*corev1.Pod
	for _, p := range initial {
		switch p.Name {
		case "p05":
			now = append(now, resized)
		case "p07":
		default:
			now = append(now, p)
		}
	}
	now = append(now, extra)
	w := want(now...)
	// The watch is asynchronous: wait (bounded) until the cache has seen the three changes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got3, _ := c.requests("n3")
		got2, _ := c.requests("n2")
		got1, _ := c.requests("n1")
		if got3 == w["n3"] && got2 == w["n2"] && got1 == w["n1"] && c.count() == len(now) {
			break
		}
		if time.Now().After(deadline) {
			break // checkSums reports the difference
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkSums(t, c, nodes, now...)
}
