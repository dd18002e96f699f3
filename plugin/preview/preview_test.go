package preview

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

func TestChange(t *testing.T) {
	n := testcluster.Node("a").Annotate(names.PolicyAnnotation, names.PolicyUsage).Build()
	c := Change{CPURatio: "2"}
	got := c.Apply(n)
	if _, ok := n.Labels[names.EnabledLabel]; ok {
		t.Error("Apply changed its input")
	}
	if diff := cmp.Diff(map[string]string{names.PolicyAnnotation: names.PolicyUsage, names.CPURatioAnnotation: "2"}, got.Annotations); diff != "" {
		t.Error(diff)
	}
	if !c.Pending(n) || c.Pending(got) {
		t.Error("Pending is wrong")
	}
	if p := c.EffectivePolicy(n); p != names.PolicyUsage {
		t.Errorf("effective policy %s", p)
	}
	if p := (Change{Policy: names.PolicyStatic}).EffectivePolicy(n); p != names.PolicyStatic {
		t.Errorf("effective policy %s", p)
	}
	b, err := Change{CPURatio: "2", Policy: "usage"}.MergePatch()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metadata":{"annotations":{"overcommit.dev/cpu-ratio":"2","overcommit.dev/policy":"usage"},"labels":{"overcommit.dev/enabled":"true"}}}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Error(diff)
	}
	b, _ = Change{}.MergePatch()
	if diff := cmp.Diff(`{"metadata":{"labels":{"overcommit.dev/enabled":"true"}}}`, string(b)); diff != "" {
		t.Error(diff)
	}
}

// TestEffectivePolicy: the preview picks the policy the webhook applies (policy.ForNode), so an
// annotation the webhook does not know ("Usage", "dynamic") previews as static, not as itself.
func TestEffectivePolicy(t *testing.T) {
	for value, want := range map[string]string{"": "static", "static": "static", "usage": "usage",
		"Usage": "static", "USAGE": "static", "dynamic": "static"} {
		n := testcluster.Node("a").Annotate(names.PolicyAnnotation, value).Build()
		if got := (Change{}).EffectivePolicy(n); got != want {
			t.Errorf("policy annotation %q: effective policy %q, want %q", value, got, want)
		}
	}
}

// TestServerItemMatchesLocal feeds the node the local plan says will be stored back as the
// apiserver's answer: the server report must then equal the local one, patch, usage statistic
// and holds included. This is what makes `preview --server` comparable with `preview` at all.
func TestServerItemMatchesLocal(t *testing.T) {
	s := policy.DefaultSettings()
	now := time.Now()
	usage := kube.Usage{Nodes: map[string]kube.NodeUsage{"c": {Usage: testcluster.NodeMetrics("c", "500m", "1Gi").Usage, Timestamp: now}}}
	load := kube.Load{Requests: requests.Amount{MilliCPU: 3000, Memory: 1 << 30}, Pods: 2}
	for _, tc := range []struct {
		name   string
		node   *corev1.Node
		change Change
	}{
		{"fresh node", testcluster.Node("a").Build(), Change{CPURatio: "2", MemoryRatio: "1.25"}},
		{"enabled node, new ratio", testcluster.Node("b").Enabled(s, names.CPURatioAnnotation, "3").Build(), Change{CPURatio: "1.5"}},
		{"enabled node, unchanged", testcluster.Node("b").Enabled(s, names.CPURatioAnnotation, "3").Build(), Change{}},
		{"usage policy", testcluster.Node("c").Build(), Change{Policy: names.PolicyUsage, CPURatio: "4"}},
		{"usage policy, recorded statistic", windowNode("c", hour, corev1.ConditionFalse), Change{}},
		{"usage policy, memory pressure", windowNode("c", hour, corev1.ConditionTrue), Change{MemoryRatio: "1.5"}},
		{"odd memory", testcluster.Node("d").Resources("3", "3839Mi").Build(), Change{CPURatio: "1.333333", MemoryRatio: "1.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compute(tc.node, tc.change, s, WebhookInputs(tc.node, load, usage, now), now)
			if err != nil {
				t.Fatal(err)
			}
			answer, err := p.After()
			if err != nil {
				t.Fatal(err)
			}
			local := p.Item()
			server, err := serverItem(tc.node, p.Hypothetical, answer, kube.ModeWebhook, []string{"overcommit: from the webhook"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"from the webhook"}, server.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			local.Reason, server.Reason, server.Warnings = "", "", local.Warnings
			if diff := cmp.Diff(local, server); diff != "" {
				t.Errorf("server report differs from the local one (-local +server):\n%s", diff)
			}
			if got, want := answer.Status.Allocatable.Cpu().String(), p.Result.Allocatable.Cpu().String(); got != want {
				t.Errorf("patched node has cpu %s, result %s", got, want)
			}
		})
	}
}

// hour is a usage window of an hour, as the webhook records it in the applied record.
var hour = policy.Statistic{CPUPercentile: 95, CPU: 1200, MemoryPercentile: 100, Memory: 5 << 30, Window: 3590 * time.Second, Samples: 240}

// windowNode is a node of 4 cpu and 16Gi on the usage policy (cpu up to x3) whose applied record
// holds stat, as the webhook writes it from its usage window, with the MemoryPressure condition
// at pressure (since a minute before its heartbeat).
func windowNode(name string, stat policy.Statistic, pressure corev1.ConditionStatus) *corev1.Node {
	beat := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	return testcluster.Node(name).Resources("4", "16Gi").
		Condition(corev1.NodeMemoryPressure, pressure, beat.Add(-time.Minute), beat).
		EnabledUsage(policy.DefaultSettings(), policy.UsageSample{
			Requests:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3"), corev1.ResourceMemory: resource.MustParse("4Gi")},
			Usage:     corev1.ResourceList{corev1.ResourceCPU: policy.Quantity(corev1.ResourceCPU, stat.CPU), corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, stat.Memory)},
			Statistic: &stat,
		}, names.CPURatioAnnotation, "3").Build()
}

func TestWindowNodeRecordsTheStatistic(t *testing.T) {
	if got := recordedStatistic(windowNode("w", hour, corev1.ConditionFalse)); got == nil || *got != hour {
		t.Fatalf("the applied record holds statistic %+v, want %+v", got, hour)
	}
	if got := recordedStatistic(testcluster.Node("c").Enabled(policy.DefaultSettings(), names.PolicyAnnotation, names.PolicyUsage).Build()); got != nil {
		t.Fatalf("a fallen-back node records statistic %+v", got)
	}
}

// TestWebhookInputs: in webhook mode the usage policy's sample is the statistic of the webhook's
// last write when the node has one, timestamped by its NodeMetrics sample or else now; without
// one, the NodeMetrics sample, flagged as one sample.
func TestWebhookInputs(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sampled := now.Add(-40 * time.Second)
	load := kube.Load{Requests: requests.Amount{MilliCPU: 1500, Memory: 1 << 30}, Pods: 1}
	metrics := func(name string) kube.Usage {
		return kube.Usage{Nodes: map[string]kube.NodeUsage{name: {Usage: testcluster.NodeMetrics(name, "3", "7Gi").Usage, Timestamp: sampled}}}
	}
	withStat, noStat := windowNode("w", hour, corev1.ConditionFalse), testcluster.Node("n").Build()
	// got is the part of Inputs compared, as strings.
	type got struct {
		Requests, Usage, Statistic, Unavailable string
		Timestamp                               time.Time
		Sample, OneSample                       bool
	}
	for _, tc := range []struct {
		name string
		node *corev1.Node
		u    kube.Usage
		want got
	}{
		{"statistic, NodeMetrics sample of the node: its timestamp", withStat, metrics("w"),
			got{Requests: "cpu=1500m,memory=1073741824", Sample: true, Usage: "cpu=1200m,memory=5368709120", Statistic: hour.String(), Timestamp: sampled}},
		{"statistic, no NodeMetrics sample of the node: now", withStat, metrics("x"),
			got{Requests: "cpu=1500m,memory=1073741824", Sample: true, Usage: "cpu=1200m,memory=5368709120", Statistic: hour.String(), Timestamp: now}},
		{"statistic, metrics.k8s.io not read: now", withStat, kube.Usage{Unavailable: "not served"},
			got{Requests: "cpu=1500m,memory=1073741824", Sample: true, Usage: "cpu=1200m,memory=5368709120", Statistic: hour.String(), Timestamp: now}},
		{"no statistic: the NodeMetrics sample", noStat, metrics("n"),
			got{Requests: "cpu=1500m,memory=1073741824", Sample: true, Usage: "cpu=3000m,memory=7516192768", Timestamp: sampled, OneSample: true}},
		{"no statistic, no NodeMetrics sample of the node", noStat, metrics("x"),
			got{Requests: "cpu=1500m,memory=1073741824", Sample: true}},
		{"no statistic, metrics.k8s.io not read", noStat, kube.Usage{Unavailable: "not served"},
			got{Requests: "cpu=1500m,memory=1073741824", Unavailable: "not served"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := WebhookInputs(tc.node, load, tc.u, now)
			g := got{Requests: policy.FormatRequests(in.Requests), Unavailable: in.Unavailable, Sample: in.Sample != nil, OneSample: in.OneSample}
			if s := in.Sample; s != nil {
				g.Timestamp = s.Timestamp
				if s.Usage != nil {
					g.Usage = policy.FormatRequests(s.Usage)
				}
				if s.Statistic != nil {
					g.Statistic = s.Statistic.String()
				}
				if diff := cmp.Diff(in.Requests, s.Requests); diff != "" {
					t.Errorf("the sample's requests differ from the guard's (-guard +sample):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestLocal previews nodes against a fake cluster in both modes: why each got what it got (the
// statistic, the holds, the warnings) and which nodes' pods were read to find out.
func TestLocal(t *testing.T) {
	s := policy.DefaultSettings()
	beat := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	warm := hour
	warm.Window, warm.Samples, warm.WarmingUp = 4*time.Minute, 16, true
	pressured := testcluster.Node("static-pressure").Condition(corev1.NodeMemoryPressure, corev1.ConditionTrue, beat.Add(-time.Minute), beat).
		Enabled(s, names.MemoryRatioAnnotation, "1.5").Build()
	// Published by the webhook in policy mode: reclaim 3000m - 1200m x 1.2, with the statistic.
	published := testcluster.Node("published").Resources("4", "16Gi").Condition(corev1.NodeReady, corev1.ConditionTrue, beat.Add(-time.Hour), beat).
		Annotate(names.UsageTargetAnnotation, policy.UsageTarget{corev1.ResourceCPU: 1560, corev1.ResourceMemory: 0}.Format(&hour)).
		Enabled(s, names.PolicyAnnotation, names.PolicyUsage, names.CPURatioAnnotation, "3").Build()
	confirmed := s
	confirmed.TargetsConfirmedAt = beat.Add(-30 * time.Second)

	// want is what the test compares of an item; warnings are matched as substrings.
	type want struct {
		CPU, Memory string
		Statistic   *policy.Statistic
		Hold        string
		Warnings    []string
	}
	for _, tc := range []struct {
		name     string
		node     *corev1.Node
		change   Change
		metrics  []metricsv1beta1.NodeMetrics // nil: metrics.k8s.io not served
		policy   bool                         // policy mode: published targets
		settings policy.Settings
		want     want
		// podReads says whether the preview had to read the node's pods.
		podReads bool
	}{{
		name: "the webhook's last statistic, not the NodeMetrics sample", node: windowNode("w", hour, corev1.ConditionFalse),
		metrics: []metricsv1beta1.NodeMetrics{testcluster.NodeMetrics("w", "3", "15Gi")}, settings: s,
		// 3 cpu requested - 1200m x 1.2 = 1560m reclaimed.
		want: want{CPU: "5560m", Memory: "16Gi", Statistic: &hour, Warnings: []string{}}, podReads: true,
	}, {
		name: "the webhook's last statistic, metrics.k8s.io not served", node: windowNode("w", hour, corev1.ConditionFalse), settings: s,
		want: want{CPU: "5560m", Memory: "16Gi", Statistic: &hour, Warnings: []string{}}, podReads: true,
	}, {
		name: "the webhook's last statistic, a stale NodeMetrics sample", node: windowNode("w", hour, corev1.ConditionFalse), settings: s,
		metrics: []metricsv1beta1.NodeMetrics{stale(testcluster.NodeMetrics("w", "3", "15Gi"))},
		want:    want{CPU: "4", Memory: "16Gi", Warnings: []string{"old"}}, podReads: true,
	}, {
		name: "warming up: held at the pods' requests", node: windowNode("w", warm, corev1.ConditionFalse), settings: s,
		metrics: []metricsv1beta1.NodeMetrics{},
		want:    want{CPU: "6", Memory: "16Gi", Statistic: &warm, Warnings: []string{"warming up"}}, podReads: true,
	}, {
		name: "no statistic recorded: one NodeMetrics sample, said", node: testcluster.Node("n").Resources("4", "16Gi").Build(),
		change: Change{Policy: names.PolicyUsage, CPURatio: "3"}, settings: s,
		metrics: []metricsv1beta1.NodeMetrics{testcluster.NodeMetrics("n", "1", "5Gi")},
		// 6 cpu requested - 1 x 1.2, up to x3.
		want: want{CPU: "8800m", Memory: "16Gi", Warnings: []string{OneSampleWarning}}, podReads: true,
	}, {
		name: "memory pressure on the usage policy: held at the pods' requests", node: windowNode("w", hour, corev1.ConditionTrue),
		change: Change{MemoryRatio: "1.5"}, settings: s, metrics: []metricsv1beta1.NodeMetrics{},
		// Memory would be 16Gi + (12Gi - 5Gi x 1.2) = 22Gi; the pods request 12Gi, less than raw.
		want: want{CPU: "5560m", Memory: "16Gi", Statistic: &hour, Hold: policy.HoldMemory, Warnings: []string{"pressure guard (memory-pressure)"}}, podReads: true,
	}, {
		name: "memory pressure on the static policy: the pods are read", node: pressured, settings: s,
		// 12Gi by the ratio, held at the 11Gi requested.
		want: want{CPU: "6", Memory: "11Gi", Hold: policy.HoldMemory, Warnings: []string{"pressure guard (memory-pressure): memory held at 11Gi instead of 12Gi"}}, podReads: true,
	}, {
		name: "static policy, no pressure: no pods read", node: testcluster.Node("static").Enabled(s, names.MemoryRatioAnnotation, "1.5").Build(), settings: s,
		want: want{CPU: "6", Memory: "12Gi", Warnings: []string{}},
	}, {
		name: "policy mode: the published target's statistic", node: published, policy: true, settings: confirmed,
		metrics: []metricsv1beta1.NodeMetrics{testcluster.NodeMetrics("published", "3", "15Gi")},
		want:    want{CPU: "5560m", Memory: "16Gi", Statistic: &hour, Warnings: []string{}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pods := []runtime.Object{testcluster.Pod("p1", tc.node.Name, "4", "10Gi"), testcluster.Pod("p2", tc.node.Name, "2", "1Gi")}
			if tc.node.Name == "w" {
				pods = []runtime.Object{testcluster.Pod("p1", "w", "3", "12Gi")}
				if tc.want.Statistic != nil && tc.want.Statistic.WarmingUp {
					pods = append(pods, testcluster.Pod("p2", "w", "3", "1Gi"))
				}
			}
			c := testcluster.New(testcluster.Options{Objects: append(pods, tc.node), NodeMetrics: tc.metrics})
			plans, err := Local(context.Background(), c.Kube, c.Metrics, []corev1.Node{*tc.node},
				Config{Change: tc.change, Settings: tc.settings, Now: time.Now(), PublishedTargets: tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			it := plans[0].Item()
			got := want{CPU: it.After.Allocatable.Cpu().String(), Memory: it.After.Allocatable.Memory().String(), Hold: it.Hold, Warnings: it.Warnings}
			if it.UsageStatistic != nil {
				st := it.UsageStatistic.Policy()
				got.Statistic = &st
			}
			if len(got.Warnings) == len(tc.want.Warnings) {
				for i, w := range tc.want.Warnings {
					if strings.Contains(got.Warnings[i], w) {
						got.Warnings[i] = w
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if read := podsRead(c); read != tc.podReads {
				t.Errorf("pods read: %v, want %v", read, tc.podReads)
			}
		})
	}
}

// stale is m measured ten minutes ago, beyond the default max metrics age.
func stale(m metricsv1beta1.NodeMetrics) metricsv1beta1.NodeMetrics {
	m.Timestamp = metav1.NewTime(m.Timestamp.Add(-10 * time.Minute))
	return m
}

func podsRead(c *testcluster.Cluster) bool {
	for _, a := range c.Kube.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "pods" {
			return true
		}
	}
	return false
}

func TestKeepWithoutRawRecord(t *testing.T) {
	s := policy.DefaultSettings()
	n := testcluster.Node("a").Enabled(s).Build()
	delete(n.Annotations, names.RawAnnotation)
	p, err := Compute(n, Change{}, s, Inputs{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	it := p.Item()
	if len(it.Patch) != 0 || it.After.Allocatable.Cpu().String() != "6" || len(it.Warnings) == 0 {
		t.Errorf("want the stored values kept with a warning and no patch: %+v", it)
	}
}
