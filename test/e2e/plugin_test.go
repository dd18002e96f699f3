//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/plugin/preview"
	"github.com/overcommit-dev/overcommit/plugin/savings"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// pluginLabel marks the nodes of the plugin tests, each test with its own value, so selectors
// and the savings totals see only that test's nodes.
const pluginLabel = "e2e.overcommit.dev/plugin"

// overcommit runs `kubectl overcommit args...` through the real kubectl, which finds the built
// plugin on PATH.
func overcommit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return kubectl(t, append([]string{"overcommit"}, args...)...)
}

func mustOvercommit(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := overcommit(t, args...)
	if err != nil {
		t.Fatalf("kubectl overcommit %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// pluginNode creates a kwok node for one test, labelled with its group and tainted like
// isolatedNode, so that other tests' pods never land on it and skew its sums.
func pluginNode(t *testing.T, name, cpu, memory, group string) *corev1.Node {
	t.Helper()
	newKwokNode(t, name, cpu, memory, map[string]string{pluginLabel: group})
	mustKubectl(t, "taint", "node", name, "e2e.overcommit.dev/owner="+name+":NoSchedule")
	return getNode(t, name)
}

// previewOf runs preview -o json and decodes it.
func previewOf(t *testing.T, args ...string) *preview.Preview {
	t.Helper()
	return harness.Preview(t, env, args...)
}

// stored is what a node holds of what overcommit manages, in a comparable form.
type stored struct {
	Allocatable, Capacity map[string]string
	Labels, Annotations   map[string]string
}

func storedOf(n *corev1.Node) stored {
	s := stored{Allocatable: map[string]string{}, Capacity: map[string]string{}, Labels: map[string]string{}, Annotations: map[string]string{}}
	for _, r := range policy.Resources {
		if q, ok := n.Status.Allocatable[r]; ok {
			s.Allocatable[string(r)] = q.String()
		}
		if q, ok := n.Status.Capacity[r]; ok {
			s.Capacity[string(r)] = q.String()
		}
	}
	for k, v := range n.Labels {
		if strings.HasPrefix(k, names.Prefix) {
			s.Labels[k] = v
		}
	}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, names.Prefix) {
			s.Annotations[k] = v
		}
	}
	return s
}

func resourcesOf(l corev1.ResourceList) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		out[string(k)] = v.String()
	}
	return out
}

// annotationValues are the annotation values a preview's patch sets.
func annotationValues(it preview.Item) map[string]string {
	out := map[string]string{}
	for _, op := range it.Patch {
		if key, ok := strings.CutPrefix(op.Path, "/metadata/annotations/"); ok {
			out[strings.ReplaceAll(key, "~1", "/")] = fmt.Sprint(op.Value)
		}
	}
	return out
}

// TestPluginEnableStoresWhatPreviewShowed: preview, then enable, then the apiserver holds exactly
// what the preview printed (allocatable, capacity and the webhook's records), at once and after
// kwok's heartbeats have written the node's status again.
func TestPluginEnableStoresWhatPreviewShowed(t *testing.T) {
	t.Parallel()
	const name = "plugin-enable"
	pluginNode(t, name, "3", "3839Mi", "enable")
	waitSettingsPublished(t)

	before := previewOf(t, name, "--cpu-ratio", "2.5", "--memory-ratio", "1.333333")
	if len(before.Items) != 1 || before.SettingsSource != "configmap" {
		t.Fatalf("unexpected preview: %+v", before)
	}
	want := before.Items[0]
	table := mustOvercommit(t, "preview", name, "--cpu-ratio", "2.5", "--memory-ratio", "1.333333")
	if !strings.Contains(table, want.After.Allocatable.Cpu().String()) {
		t.Errorf("the table does not show the allocatable cpu %s:\n%s", want.After.Allocatable.Cpu(), table)
	}

	out := mustOvercommit(t, "enable", name, "--cpu-ratio", "2.5", "--memory-ratio", "1.333333")
	if got := strings.TrimSpace(out); got != "node/"+name+" overcommit enabled (cpu x2.5, memory x1.333333)" {
		t.Errorf("enable printed %q", got)
	}
	check := func(when string) {
		t.Helper()
		got := storedOf(getNode(t, name))
		if diff := cmp.Diff(resourcesOf(want.After.Allocatable), got.Allocatable); diff != "" {
			t.Errorf("%s: allocatable differs from the preview (-preview +stored):\n%s", when, diff)
		}
		if diff := cmp.Diff(resourcesOf(want.After.Capacity), got.Capacity); diff != "" {
			t.Errorf("%s: capacity differs from the preview (-preview +stored):\n%s", when, diff)
		}
		for k, v := range annotationValues(want) {
			if got.Annotations[k] != v {
				t.Errorf("%s: %s = %q, the preview's patch set %q", when, k, got.Annotations[k], v)
			}
		}
	}
	check("right after enable")
	// kwok's heartbeats write the node's status without allocatable: the webhook must keep the
	// same values (never compound), so the preview stays true.
	time.Sleep(3 * heartbeat)
	check("after heartbeats")

	// What the webhook stores now is what preview says, with no change pending.
	again := previewOf(t, name)
	if it := again.Items[0]; len(it.Patch) != 0 || !it.Enabled {
		t.Errorf("preview of the enabled node wants a patch or says not enabled: %+v", it)
	}
}

// TestPluginDisableRestoresAtOnce: disable puts the kubelet's values back in the same command,
// not at the next kubelet report, and removes every trace of overcommit.
func TestPluginDisableRestoresAtOnce(t *testing.T) {
	t.Parallel()
	const name = "plugin-disable"
	raw := storedOf(pluginNode(t, name, "4", "8Gi", "disable"))
	mustOvercommit(t, "enable", name, "--cpu-ratio", "3")
	if got := storedOf(getNode(t, name)).Allocatable["cpu"]; got != "12" {
		t.Fatalf("enable stored cpu %s, want 12", got)
	}

	// A server dry run shows the restore and changes nothing.
	dry := mustOvercommit(t, "disable", name, "--dry-run=server", "-o", "jsonpath={.status.allocatable.cpu}")
	if dry != "4" {
		t.Errorf("--dry-run=server printed allocatable cpu %q, want 4", dry)
	}
	if got := storedOf(getNode(t, name)).Allocatable["cpu"]; got != "12" {
		t.Fatalf("the dry run changed the node: cpu %s", got)
	}

	out := mustOvercommit(t, "disable", name)
	if got := strings.TrimSpace(out); got != "node/"+name+" overcommit disabled (allocatable restored: cpu 4, memory 8Gi)" {
		t.Errorf("disable printed %q", got)
	}
	if diff := cmp.Diff(raw, storedOf(getNode(t, name))); diff != "" {
		t.Errorf("right after disable, the node differs from before enable (-before +now):\n%s", diff)
	}
	time.Sleep(3 * heartbeat)
	if diff := cmp.Diff(raw, storedOf(getNode(t, name))); diff != "" {
		t.Errorf("after heartbeats, the node differs from before enable (-before +now):\n%s", diff)
	}
	if out := mustOvercommit(t, "disable", name); !strings.Contains(out, "overcommit not enabled") {
		t.Errorf("a second disable printed %q", out)
	}
}

// TestPluginDisableRefusesOverbookedNode: a node whose pods need the overcommit stays as it is
// unless --force.
func TestPluginDisableRefusesOverbookedNode(t *testing.T) {
	t.Parallel()
	const name = "plugin-overbooked"
	pluginNode(t, name, "2", "4Gi", "overbooked")
	mustOvercommit(t, "enable", name, "--cpu-ratio", "2")
	pod := podOn(name, "plugin-overbooked-pod", "3", "100m")
	pod.Spec.NodeName = name // bound directly, as the scheduler would not place it
	createPods(t, pod)
	enabled := storedOf(getNode(t, name))

	_, errOut, err := overcommit(t, "disable", name)
	if err == nil || !strings.Contains(errOut, "node/"+name+": its pods request 3 cpu, more than its raw allocatable 2") {
		t.Errorf("disable of an overbooked node: err %v, stderr %q", err, errOut)
	}
	if diff := cmp.Diff(enabled, storedOf(getNode(t, name))); diff != "" {
		t.Errorf("the refused disable changed the node (-before +after):\n%s", diff)
	}
	_, errOut = mustOvercommitErr(t, "disable", name, "--force")
	if !strings.Contains(errOut, "disabling anyway (--force)") {
		t.Errorf("--force did not warn: %q", errOut)
	}
	if got := storedOf(getNode(t, name)).Allocatable["cpu"]; got != "2" {
		t.Errorf("after --force, cpu %s, want 2", got)
	}
}

// waitSettingsPublished waits until the settings ConfigMap exists (TestMain creates it before the
// webhook starts; the plugin and the webhook read it).
func waitSettingsPublished(t *testing.T) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, "the settings ConfigMap", func() error {
		_, err := kube(t).CoreV1().ConfigMaps(names.Namespace).Get(context.Background(), names.SettingsConfigMap, metav1.GetOptions{})
		return err
	})
}

func mustOvercommitErr(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out, errOut, err := overcommit(t, args...)
	if err != nil {
		t.Fatalf("kubectl overcommit %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out, errOut
}

// TestPluginPreviewServerEqualsLocal: the apiserver's answer (through the real webhook) and the
// plugin's local computation agree, field for field, for new and already opted-in nodes.
func TestPluginPreviewServerEqualsLocal(t *testing.T) {
	t.Parallel()
	pluginNode(t, "plugin-server-a", "4", "8Gi", "server")
	pluginNode(t, "plugin-server-b", "3", "3839Mi", "server")
	pluginNode(t, "plugin-server-c", "2", "4Gi", "server")
	mustOvercommit(t, "enable", "plugin-server-c", "--cpu-ratio", "3")

	for _, args := range [][]string{
		{"-l", pluginLabel + "=server"},
		{"-l", pluginLabel + "=server", "--cpu-ratio", "2", "--memory-ratio", "1.5"},
		{"plugin-server-b", "plugin-server-c", "--cpu-ratio", "1.333333", "--memory-ratio", "1.1"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			local := previewOf(t, args...)
			server := previewOf(t, append(args, "--server")...)
			if local.Source != "local" || server.Source != "server" {
				t.Fatalf("sources %q and %q", local.Source, server.Source)
			}
			if len(local.Items) == 0 {
				t.Fatal("empty preview")
			}
			// The reason says who answered; everything else must be equal.
			for i := range local.Items {
				local.Items[i].Reason = ""
			}
			for i := range server.Items {
				server.Items[i].Reason = ""
			}
			if diff := cmp.Diff(local.Items, server.Items); diff != "" {
				t.Errorf("preview --server differs from preview (-local +server):\n%s", diff)
			}
			patch := mustOvercommit(t, append([]string{"preview", "plugin-server-b", "-o", "patch"}, args[2:]...)...)
			if !json.Valid([]byte(patch)) {
				t.Errorf("-o patch is not JSON: %q", patch)
			}
		})
	}
}

// TestPluginSavingsTotals: the report's rows and totals are the sums of what the apiserver
// stores: nodes' allocatable, the webhook's raw records, and the bound pods' requests.
func TestPluginSavingsTotals(t *testing.T) {
	t.Parallel()
	const group = "savings"
	pluginNode(t, "plugin-savings-a", "4", "8Gi", group)
	pluginNode(t, "plugin-savings-b", "8", "16Gi", group)
	pluginNode(t, "plugin-savings-c", "2", "4Gi", group)
	mustOvercommit(t, "enable", "plugin-savings-a", "--cpu-ratio", "2")
	mustOvercommit(t, "enable", "plugin-savings-b", "--cpu-ratio", "1.5", "--memory-ratio", "1.25")
	var pods []*corev1.Pod
	for i, node := range []string{"plugin-savings-a", "plugin-savings-a", "plugin-savings-b", "plugin-savings-c"} {
		p := podOn(node, fmt.Sprintf("plugin-savings-%d", i), fmt.Sprintf("%dm", 500*(i+1)), "100m")
		p.Spec.NodeName = node
		pods = append(pods, p)
	}
	createPods(t, pods...)

	var r savings.SavingsReport
	if err := json.Unmarshal([]byte(mustOvercommit(t, "savings", "-l", pluginLabel+"="+group, "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "SavingsReport" || r.APIVersion != "overcommit.dev/v1alpha1" || len(r.Nodes) != 3 {
		t.Fatalf("unexpected report: %+v", r)
	}

	// The same sums, straight from the apiserver.
	ctx := context.Background()
	nodes, err := kube(t).CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: pluginLabel + "=" + group})
	if err != nil {
		t.Fatal(err)
	}
	sum := map[string]*resource.Quantity{}
	add := func(key string, q resource.Quantity) {
		if sum[key] == nil {
			sum[key] = &resource.Quantity{}
		}
		sum[key].Add(q)
	}
	for _, n := range nodes.Items {
		raw := n.Status.Allocatable
		if s, ok := n.Annotations[names.RawAnnotation]; ok && policy.OptedIn(n.Labels) {
			snap, err := policy.ParseRaw(s)
			if err != nil {
				t.Fatal(err)
			}
			raw = snap.Allocatable
		}
		for _, res := range policy.Resources {
			add("allocatable/"+string(res), n.Status.Allocatable[res])
			add("raw/"+string(res), raw[res])
		}
	}
	for _, p := range pods {
		for _, res := range policy.Resources {
			add("requests/"+string(res), p.Spec.Containers[0].Resources.Requests[res])
		}
	}
	for key, got := range map[string]resource.Quantity{
		"allocatable/cpu": r.Total.CPU.Allocatable, "allocatable/memory": r.Total.Memory.Allocatable,
		"raw/cpu": r.Total.CPU.Raw, "raw/memory": r.Total.Memory.Raw,
		"requests/cpu": r.Total.CPU.Requests, "requests/memory": r.Total.Memory.Requests,
	} {
		if want := sum[key]; want == nil || want.Cmp(got) != 0 {
			t.Errorf("total %s = %s, the apiserver's nodes and pods sum to %v", key, got.String(), want)
		}
	}
	// 4 + 4 extra cpu (x2 on 4, x1.5 on 8) over an average raw node of 14/3 cpu.
	if got := r.Total.CPU.Extra.String(); got != "8" {
		t.Errorf("extra cpu %s, want 8", got)
	}
	if r.Total.NodesGained.CPU != "1.71" || r.Total.Pods != 4 || r.Total.EnabledNodes != 2 {
		t.Errorf("totals %+v", r.Total)
	}
	if !r.UsageAvailable {
		t.Errorf("metrics-server runs, but the report has no usage: %s", r.UsageUnavailable)
	}
	table := mustOvercommit(t, "savings", "-l", pluginLabel+"="+group, "--sort-by", "cpu-extra")
	if !strings.Contains(table, "TOTAL") || !strings.Contains(table, "1.71 nodes' worth") {
		t.Errorf("table:\n%s", table)
	}
}

// TestPluginBadInput: every bad command fails with a clear message and a non-zero exit, and
// leaves the node exactly as it was.
func TestPluginBadInput(t *testing.T) {
	t.Parallel()
	const name = "plugin-bad-input"
	pluginNode(t, name, "4", "8Gi", "bad-input")
	before := storedOf(getNode(t, name))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"enable", "plugin-no-such-node"}, `error: node "plugin-no-such-node" not found`},
		{[]string{"enable", name, "plugin-no-such-node", "--cpu-ratio", "2"}, `error: node "plugin-no-such-node" not found`},
		{[]string{"enable", name, "--cpu-ratio", "0.5"}, `error: invalid cpu ratio "0.5": must be at least 1`},
		{[]string{"enable", name, "--cpu-ratio", "x"}, `error: invalid cpu ratio "x": not a decimal number`},
		{[]string{"enable", name, "--cpu-ratio", "5"}, `error: invalid cpu ratio "5": the webhook allows at most 4; nothing changed`},
		{[]string{"enable", name, "--memory-ratio", "2"}, `error: invalid memory ratio "2": the webhook allows at most 1.5; nothing changed`},
		{[]string{"enable", "-l", pluginLabel + "=nothing-here"}, `error: no nodes match the selector "` + pluginLabel + `=nothing-here"`},
		{[]string{"enable", name, "--server", "https://127.0.0.1:1"}, "connection refused"},
		{[]string{"enable", name, "--kubeconfig", "/nonexistent/kubeconfig"}, "error: cannot load the kubeconfig"},
		{[]string{"enable", name, "--policy", "dynamic"}, `error: invalid --policy "dynamic"`},
		{[]string{"disable", "plugin-no-such-node"}, `error: node "plugin-no-such-node" not found`},
		{[]string{"preview", "plugin-no-such-node"}, `error: node "plugin-no-such-node" not found`},
		{[]string{"savings", "-l", pluginLabel + "=nothing-here"}, "error: no nodes match the selector"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errOut, err := overcommit(t, tc.args...)
			if err == nil {
				t.Error("exit status 0")
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
			if diff := cmp.Diff(before, storedOf(getNode(t, name))); diff != "" {
				t.Errorf("the node changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestPluginCompletion: kubectl finds kubectl_complete-overcommit and completes node names.
func TestPluginCompletion(t *testing.T) {
	t.Parallel()
	pluginNode(t, "plugin-complete-me", "1", "1Gi", "complete")
	out := mustKubectl(t, "__complete", "overcommit", "enable", "plugin-complete-")
	if !strings.Contains(out, "plugin-complete-me\n") {
		t.Errorf("completion did not offer the node:\n%s", out)
	}
}

var pluginScale = flag.String("plugin-scale", "", "NODES/PODS for TestPluginScale, e.g. 5000/150000; empty skips it (it takes minutes)")

// TestPluginScale measures the plugin on a large cluster: it creates plain nodes (no kubelet, no
// heartbeats) and pods bound to them round-robin, then times `enable` on half the nodes,
// `savings` and `preview` through the real kubectl and reports each run's wall time and the
// plugin's peak memory. Run it alone:
//
//	go test -tags e2e ./test/e2e -run TestPluginScale -v -timeout 60m -args -bin-dir=$PWD/bin -plugin-scale=5000/150000
func TestPluginScale(t *testing.T) {
	if *pluginScale == "" {
		t.Skip("set -plugin-scale=NODES/PODS to run")
	}
	var nodeCount, podCount int
	if _, err := fmt.Sscanf(*pluginScale, "%d/%d", &nodeCount, &podCount); err != nil || nodeCount <= 0 || podCount < 0 {
		t.Fatalf("-plugin-scale=%q: want NODES/PODS", *pluginScale)
	}
	const group, namespace = "scale", "plugin-scale"
	cfg := env.RESTConfig()
	cfg.QPS, cfg.Burst = 5000, 5000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), namespace, metav1.DeleteOptions{})
		_ = cs.CoreV1().Nodes().DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: pluginLabel + "=" + group})
	})
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	parallel(t, nodeCount, func(i int) error {
		n := cluster.KwokNode(fmt.Sprintf("scale-%05d", i), "8", "32Gi")
		delete(n.Annotations, cluster.KwokNodeAnnotation) // no kwok: no heartbeats, no pods run
		delete(n.Labels, cluster.KwokNodeLabel)           // metrics-server does not scrape it
		n.Labels[pluginLabel] = group
		_, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		return err
	})
	t.Logf("created %d nodes in %s", nodeCount, time.Since(begin).Round(time.Second))
	begin = time.Now()
	forever := []corev1.Toleration{ // the nodes never report: keep the pods bound regardless
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	}
	parallel(t, podCount, func(i int) error {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%06d", i), Namespace: namespace},
			Spec: corev1.PodSpec{NodeName: fmt.Sprintf("scale-%05d", i%nodeCount), Tolerations: forever,
				Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}}}}},
		}
		_, err := cs.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{})
		return err
	})
	t.Logf("created %d pods in %s", podCount, time.Since(begin).Round(time.Second))

	measure := func(args ...string) string {
		t.Helper()
		cmd, err := harness.KubectlCmd(context.Background(), env, append([]string{"overcommit"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl overcommit %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		// kubectl execs the plugin in its own process, so this is the plugin's peak.
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024
		t.Logf("MEASURED kubectl overcommit %s: %s, max RSS %d MiB, %d bytes out",
			strings.Join(args, " "), time.Since(start).Round(10*time.Millisecond), rss, out.Len())
		return out.String()
	}
	waitSettingsPublished(t)
	half := pluginLabel + "=" + group + ",scale-half=yes"
	parallel(t, nodeCount/2, func(i int) error {
		_, err := cs.CoreV1().Nodes().Patch(ctx, fmt.Sprintf("scale-%05d", 2*i), types.MergePatchType, []byte(`{"metadata":{"labels":{"scale-half":"yes"}}}`), metav1.PatchOptions{})
		return err
	})
	measure("enable", "-l", half, "--cpu-ratio", "2")
	var r savings.SavingsReport
	if err := json.Unmarshal([]byte(measure("savings", "-l", pluginLabel+"="+group, "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	measure("savings", "-l", pluginLabel+"="+group, "--sort-by", "cpu-extra")
	measure("preview", "-l", pluginLabel+"="+group)
	if r.Total.Nodes != nodeCount || r.Total.Pods != podCount || r.Total.EnabledNodes != nodeCount/2 {
		t.Errorf("report counts %d nodes, %d pods, %d enabled; want %d, %d, %d", r.Total.Nodes, r.Total.Pods, r.Total.EnabledNodes, nodeCount, podCount, nodeCount/2)
	}
	if got, want := r.Total.CPU.Extra.Value(), int64(8*(nodeCount/2)); got != want {
		t.Errorf("extra cpu %d, want %d", got, want)
	}
}

// parallel runs fn for 0..n-1 on 32 goroutines and fails the test on the first error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					select {
					case errs <- fmt.Errorf("item %d: %w", i, err):
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
