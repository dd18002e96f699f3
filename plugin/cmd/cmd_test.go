package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/overcommit-dev/overcommit/internal/golden"
	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// TestMain fails the run when a golden file under testdata was compared by no test.
func TestMain(m *testing.M) { os.Exit(golden.Run(m, filepath.Join("testdata", "*.golden"))) }

type fakeFactory struct{ c *Clients }

func (f fakeFactory) Clients() (*Clients, error) { return f.c, nil }

// fixture is a small cluster:
//
//	node-a  4 cpu 8Gi   pool=batch, not opted in; 2 pods (one with a bigger init container),
//	                    plus a finished pod and an unscheduled one that must not count
//	node-b  4 cpu 8Gi   opted in, static cpu x2 (stored 8); pods request 6 cpu
//	node-c  4 cpu 16Gi  opted in, usage policy up to x3 (stored: the kubelet's, usage fell back)
//	node-d  2 cpu 4Gi   pool=batch, not opted in, no pods
func fixture(o testcluster.Options) *testcluster.Cluster {
	s := policy.DefaultSettings()
	initPod := testcluster.Pod("init", "node-a", "500m", "1Gi")
	initPod.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}}}}
	done := testcluster.Pod("done", "node-a", "3", "1Gi")
	done.Status.Phase = corev1.PodSucceeded
	objs := []runtime.Object{
		testcluster.Node("node-a").Label("pool", "batch").Build(),
		testcluster.Node("node-b").Enabled(s, names.CPURatioAnnotation, "2").Build(),
		testcluster.Node("node-c").Resources("4", "16Gi").Enabled(s, names.CPURatioAnnotation, "3", names.PolicyAnnotation, names.PolicyUsage).Build(),
		testcluster.Node("node-d").Resources("2", "4Gi").Label("pool", "batch").Build(),
		testcluster.Pod("a1", "node-a", "1", "512Mi"),
		initPod,
		done,
		testcluster.Pod("pending", "", "8", "1Gi"),
		testcluster.Pod("b1", "node-b", "4", "2Gi"),
		testcluster.Pod("b2", "node-b", "2", "2Gi"),
		testcluster.Pod("c1", "node-c", "3", "4Gi"),
	}
	o.Objects = append(objs, o.Objects...)
	return testcluster.New(o)
}

// withSettings is an install in webhook mode with the default settings.
func withSettings() testcluster.Options {
	return testcluster.Options{Objects: []runtime.Object{testcluster.SettingsConfigMap(policy.DefaultSettings()), testcluster.WebhookConfiguration(true)}}
}

// withPolicyMode is an install in policy mode with the default settings.
func withPolicyMode() testcluster.Options {
	return testcluster.Options{Objects: []runtime.Object{testcluster.SettingsConfigMap(policy.DefaultSettings()),
		testcluster.NodePolicy(), testcluster.WebhookConfiguration(false)}}
}

// withWindow adds nodes whose applied records say why they got what they got (pool=window):
//
//	node-e  4 cpu 16Gi  usage policy up to x3, the webhook's last statistic over an hour; a pod requests 3 cpu
//	node-f  4 cpu 8Gi   static, memory x1.5, under MemoryPressure: held; a pod requests 9Gi
//	node-g  4 cpu 16Gi  usage policy up to x3, the webhook's window warming up; a pod requests 6 cpu
func withWindow(o testcluster.Options) testcluster.Options {
	s := policy.DefaultSettings()
	beat := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	hour := policy.Statistic{CPUPercentile: 95, CPU: 1200, MemoryPercentile: 100, Memory: 5 << 30, Window: 3590 * time.Second, Samples: 240}
	warm := policy.Statistic{CPUPercentile: 95, CPU: 300, MemoryPercentile: 100, Memory: 2 << 30, Window: 250 * time.Second, Samples: 17, WarmingUp: true}
	usage := func(name string, st policy.Statistic) *corev1.Node {
		return testcluster.Node(name).Resources("4", "16Gi").Label("pool", "window").EnabledUsage(s, policy.UsageSample{
			Requests:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3"), corev1.ResourceMemory: resource.MustParse("4Gi")},
			Usage:     corev1.ResourceList{corev1.ResourceCPU: policy.Quantity(corev1.ResourceCPU, st.CPU), corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, st.Memory)},
			Statistic: &st,
		}, names.CPURatioAnnotation, "3").Build()
	}
	o.Objects = append(o.Objects,
		usage("node-e", hour),
		testcluster.Node("node-f").Label("pool", "window").Condition(corev1.NodeMemoryPressure, corev1.ConditionTrue, beat.Add(-time.Minute), beat).
			Enabled(s, names.MemoryRatioAnnotation, "1.5").Build(),
		usage("node-g", warm),
		testcluster.Pod("e1", "node-e", "3", "4Gi"),
		testcluster.Pod("f1", "node-f", "1", "9Gi"),
		testcluster.Pod("g1", "node-g", "6", "2Gi"),
	)
	return o
}

// withPublishedTarget is an install in policy mode whose webhook published node-p's usage target
// with the statistic it came from, confirmed 30s before the node's heartbeat.
func withPublishedTarget() testcluster.Options {
	s := policy.DefaultSettings()
	beat := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	hour := policy.Statistic{CPUPercentile: 95, CPU: 1200, MemoryPercentile: 100, Memory: 5 << 30, Window: 3590 * time.Second, Samples: 240}
	confirmed := s
	confirmed.TargetsConfirmedAt = beat.Add(-30 * time.Second)
	o := withPolicyMode()
	o.Objects = []runtime.Object{testcluster.SettingsConfigMap(confirmed), testcluster.NodePolicy(), testcluster.WebhookConfiguration(false),
		testcluster.Node("node-p").Resources("4", "16Gi").Condition(corev1.NodeReady, corev1.ConditionTrue, beat.Add(-time.Hour), beat).
			Annotate(names.UsageTargetAnnotation, policy.UsageTarget{corev1.ResourceCPU: 1560, corev1.ResourceMemory: -2147483648}.Format(&hour)).
			Enabled(s, names.PolicyAnnotation, names.PolicyUsage, names.CPURatioAnnotation, "3").Build()}
	return o
}

func withMetrics(o testcluster.Options) testcluster.Options {
	o.NodeMetrics = []metricsv1beta1.NodeMetrics{
		testcluster.NodeMetrics("node-a", "700m", "1Gi"),
		testcluster.NodeMetrics("node-b", "1200m", "3Gi"),
		testcluster.NodeMetrics("node-c", "1", "5Gi"),
	}
	return o
}

// run executes the plugin with args against c and returns what it printed and its error.
func run(t *testing.T, c *testcluster.Cluster, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runWithStdin(t, c, "", args...)
}

// runWithStdin is run with stdin (inject -f -).
func runWithStdin(t *testing.T, c *testcluster.Cluster, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewCmdOvercommitWith(genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut},
		fakeFactory{&Clients{Kube: c.Kube, Metrics: c.Metrics}})
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// compareGolden compares got with testdata/<name>.golden, or rewrites it with -update.
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Compare(t, filepath.Join("testdata", name+".golden"), []byte(got))
}

// transcript is what a golden file holds: stdout, stderr and the error.
func transcript(stdout, stderr string, err error) string {
	var b strings.Builder
	b.WriteString(stdout)
	if stderr != "" {
		b.WriteString("--- stderr\n" + stderr)
	}
	if err != nil {
		b.WriteString("--- error\n" + err.Error() + "\n")
	}
	return b.String()
}

func getNode(t *testing.T, c *testcluster.Cluster, name string) *corev1.Node {
	t.Helper()
	n, err := c.Kube.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func allocatable(n *corev1.Node) string {
	return n.Status.Allocatable.Cpu().String() + "/" + n.Status.Allocatable.Memory().String() + " capacity " +
		n.Status.Capacity.Cpu().String() + "/" + n.Status.Capacity.Memory().String()
}
