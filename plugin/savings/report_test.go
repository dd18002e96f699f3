package savings

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

// row is the part of a node's savings the math cases compare, as strings.
type row struct {
	Name, Policy             string
	Enabled                  bool
	Pods                     int
	CPURaw, CPUAlloc, CPUReq string
	CPUUsage, CPUExtra       string
	MemRaw, MemAlloc, MemReq string
	MemUsage, MemExtra       string
	GainedCPU, GainedMem     string
	// Statistic is the structured statistic (policy.Statistic.String), Basis the table's cell.
	Statistic, Hold, Basis string
}

func rowOf(n NodeSavings) row {
	u := func(a Amounts) string {
		if a.Usage == nil {
			return "-"
		}
		return a.Usage.String()
	}
	r := row{Name: n.Name, Policy: n.Policy, Enabled: n.Enabled, Pods: n.Pods,
		CPURaw: n.CPU.Raw.String(), CPUAlloc: n.CPU.Allocatable.String(), CPUReq: n.CPU.Requests.String(), CPUUsage: u(n.CPU), CPUExtra: n.CPU.Extra.String(),
		MemRaw: n.Memory.Raw.String(), MemAlloc: n.Memory.Allocatable.String(), MemReq: n.Memory.Requests.String(), MemUsage: u(n.Memory), MemExtra: n.Memory.Extra.String(),
		Hold: n.Hold, Basis: n.basis()}
	if n.UsageStatistic != nil {
		r.Statistic = n.UsageStatistic.Policy().String()
	}
	return r
}

func totalOf(r *SavingsReport) row {
	t := rowOf(NodeSavings{Name: "TOTAL", Pods: r.Total.Pods, CPU: r.Total.CPU, Memory: r.Total.Memory})
	t.GainedCPU, t.GainedMem = r.Total.NodesGained.CPU, r.Total.NodesGained.Memory
	return t
}

func TestBuild(t *testing.T) {
	s := policy.DefaultSettings()
	static2 := testcluster.Node("static").Enabled(s, names.CPURatioAnnotation, "2", names.MemoryRatioAnnotation, "1.5").Build()
	plain := testcluster.Node("plain").Resources("2", "4Gi").Build()
	// Opted in, but the webhook has not acted yet: no raw record, so nothing is gained.
	labelled := testcluster.Node("labelled").Label(names.EnabledLabel, names.EnabledValue).Build()
	// Not opted in any more, with stale records left: the stored value is the kubelet's.
	stale := testcluster.Node("stale").Enabled(s).Build()
	delete(stale.Labels, names.EnabledLabel)
	stale.Status.Allocatable = testcluster.Node("x").Build().Status.Allocatable

	usage := kube.Usage{Nodes: map[string]kube.NodeUsage{
		"static": {Usage: testcluster.NodeMetrics("static", "1500m", "3Gi").Usage},
		"plain":  {Usage: testcluster.NodeMetrics("plain", "250m", "1Gi").Usage},
	}}
	loads := map[string]kube.Load{
		"static": {Requests: requests.Amount{MilliCPU: 7000, Memory: 6 << 30}, Pods: 7},
		"plain":  {Requests: requests.Amount{MilliCPU: 500, Memory: 512 << 20}, Pods: 1},
	}
	for _, tc := range []struct {
		name      string
		in        Input
		wantRows  []row
		wantTotal row
	}{{
		name: "static and plain nodes with usage",
		in:   Input{Nodes: []corev1.Node{*plain, *static2}, Loads: loads, Usage: usage},
		wantRows: []row{
			{Name: "plain", Pods: 1, CPURaw: "2", CPUAlloc: "2", CPUReq: "500m", CPUUsage: "250m", CPUExtra: "0",
				MemRaw: "4Gi", MemAlloc: "4Gi", MemReq: "512Mi", MemUsage: "1Gi", MemExtra: "0"},
			{Name: "static", Policy: "static", Enabled: true, Pods: 7, CPURaw: "4", CPUAlloc: "8", CPUReq: "7", CPUUsage: "1500m", CPUExtra: "4",
				MemRaw: "8Gi", MemAlloc: "12Gi", MemReq: "6Gi", MemUsage: "3Gi", MemExtra: "4Gi"},
		},
		// 4 extra cpu over an average raw node of 3 cpu; 4Gi over an average of 6Gi.
		wantTotal: row{Name: "TOTAL", Pods: 8, CPURaw: "6", CPUAlloc: "10", CPUReq: "7500m", CPUUsage: "1750m", CPUExtra: "4",
			MemRaw: "12Gi", MemAlloc: "16Gi", MemReq: "6656Mi", MemUsage: "4Gi", MemExtra: "4Gi", GainedCPU: "1.33", GainedMem: "0.67"},
	}, {
		name: "no metrics: no usage anywhere",
		in:   Input{Nodes: []corev1.Node{*static2}, Loads: loads, Usage: kube.Usage{Unavailable: "not served"}},
		wantRows: []row{{Name: "static", Policy: "static", Enabled: true, Pods: 7, CPURaw: "4", CPUAlloc: "8", CPUReq: "7", CPUUsage: "-", CPUExtra: "4",
			MemRaw: "8Gi", MemAlloc: "12Gi", MemReq: "6Gi", MemUsage: "-", MemExtra: "4Gi"}},
		wantTotal: row{Name: "TOTAL", Pods: 7, CPURaw: "4", CPUAlloc: "8", CPUReq: "7", CPUUsage: "-", CPUExtra: "4",
			MemRaw: "8Gi", MemAlloc: "12Gi", MemReq: "6Gi", MemUsage: "-", MemExtra: "4Gi", GainedCPU: "1.00", GainedMem: "0.50"},
	}, {
		name: "labelled without a record, and stale records without the label, gain nothing",
		in:   Input{Nodes: []corev1.Node{*labelled, *stale}, Usage: kube.Usage{Nodes: map[string]kube.NodeUsage{}}},
		wantRows: []row{
			{Name: "labelled", Policy: "static", Enabled: true, CPURaw: "4", CPUAlloc: "4", CPUReq: "0", CPUUsage: "-", CPUExtra: "0",
				MemRaw: "8Gi", MemAlloc: "8Gi", MemReq: "0", MemUsage: "-", MemExtra: "0"},
			{Name: "stale", CPURaw: "4", CPUAlloc: "4", CPUReq: "0", CPUUsage: "-", CPUExtra: "0",
				MemRaw: "8Gi", MemAlloc: "8Gi", MemReq: "0", MemUsage: "-", MemExtra: "0"},
		},
		// Metrics were read, so the total has usage (zero: no node had a sample).
		wantTotal: row{Name: "TOTAL", CPURaw: "8", CPUAlloc: "8", CPUReq: "0", CPUUsage: "0", CPUExtra: "0",
			MemRaw: "16Gi", MemAlloc: "16Gi", MemReq: "0", MemUsage: "0", MemExtra: "0", GainedCPU: "0.00", GainedMem: "0.00"},
	}, {
		name:      "no nodes",
		in:        Input{Usage: kube.Usage{Unavailable: "x"}},
		wantTotal: row{Name: "TOTAL", CPURaw: "0", CPUAlloc: "0", CPUReq: "0", CPUUsage: "-", CPUExtra: "0", MemRaw: "0", MemAlloc: "0", MemReq: "0", MemUsage: "-", MemExtra: "0", GainedCPU: "0.00", GainedMem: "0.00"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := Build(tc.in)
			var got []row
			for _, n := range r.Nodes {
				got = append(got, rowOf(n))
			}
			if diff := cmp.Diff(tc.wantRows, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTotal, totalOf(r)); diff != "" {
				t.Errorf("total (-want +got):\n%s", diff)
			}
			if r.APIVersion != "overcommit.dev/v1alpha1" || r.Kind != "SavingsReport" {
				t.Errorf("apiVersion/kind %s/%s", r.APIVersion, r.Kind)
			}
		})
	}
}

// TestBuildStatistic: a usage node's row carries the statistic of the node policy's last write
// and a held node its hold, structured and in a short cell; static nodes and nodes no longer
// opted in carry neither.
func TestBuildStatistic(t *testing.T) {
	s := policy.DefaultSettings()
	beat := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	hour := policy.Statistic{CPUPercentile: 95, CPU: 1200, MemoryPercentile: 100, Memory: 5 << 30, Window: 3590 * time.Second, Samples: 240}
	warm := policy.Statistic{CPUPercentile: 90, CPU: 250, MemoryPercentile: 99, Memory: 1536 << 20, Window: 250 * time.Second, Samples: 17, WarmingUp: true}
	usage := func(name string) *testcluster.NodeBuilder { return testcluster.Node(name).Resources("4", "16Gi") }
	enable := func(b *testcluster.NodeBuilder, st policy.Statistic) corev1.Node {
		return *b.EnabledUsage(s, policy.UsageSample{
			Requests:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3"), corev1.ResourceMemory: resource.MustParse("8Gi")},
			Usage:     corev1.ResourceList{corev1.ResourceCPU: policy.Quantity(corev1.ResourceCPU, st.CPU), corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, st.Memory)},
			Statistic: &st,
		}, names.CPURatioAnnotation, "3").Build()
	}
	pressure := func(b *testcluster.NodeBuilder, t corev1.NodeConditionType) *testcluster.NodeBuilder {
		return b.Condition(t, corev1.ConditionTrue, beat.Add(-time.Minute), beat)
	}
	left := enable(usage("left"), hour)
	delete(left.Labels, names.EnabledLabel)
	nodes := []corev1.Node{
		enable(usage("window"), hour),
		enable(usage("warming"), warm),
		enable(pressure(usage("held-usage"), corev1.NodePIDPressure), hour),
		*pressure(testcluster.Node("held-static"), corev1.NodeMemoryPressure).Enabled(s).Build(),
		*testcluster.Node("static").Enabled(s).Build(),
		left,
	}
	var got []row
	for _, n := range Build(Input{Nodes: nodes, Usage: kube.Usage{Unavailable: "x"}}).Nodes {
		got = append(got, row{Name: n.Name, Statistic: rowOf(n).Statistic, Hold: n.Hold, Basis: rowOf(n).Basis})
	}
	want := []row{
		{Name: "held-static", Hold: "memory-pressure", Basis: "held: memory-pressure"},
		{Name: "held-usage", Statistic: hour.String(), Hold: "pid-pressure", Basis: "p95 1200m, max 5Gi over 59m (240); held: pid-pressure"},
		{Name: "left"},
		{Name: "static"},
		{Name: "warming", Statistic: warm.String(), Basis: "p90 250m, p99 1536Mi over 4m10s (17), warming up"},
		{Name: "window", Statistic: hour.String(), Basis: "p95 1200m, max 5Gi over 59m (240)"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNodesGained(t *testing.T) {
	for _, tc := range []struct {
		extra, raw int64
		nodes      int
		want       string
	}{
		{4000, 14000, 4, "1.14"},
		{2000, 3000, 1, "0.67"}, // rounds half away from zero
		{0, 1000, 3, "0.00"},
		{1000, 0, 3, "0.00"},
		{-500, 1000, 1, "-0.50"},
		// 5,000 nodes of 1 TiB with 50% extra: the product overflows int64.
		{5000 * (512 << 30), 5000 * (1 << 40), 5000, "2500.00"},
	} {
		if got := nodesGained(tc.extra, tc.raw, tc.nodes); got != tc.want {
			t.Errorf("nodesGained(%d, %d, %d) = %s, want %s", tc.extra, tc.raw, tc.nodes, got, tc.want)
		}
	}
}

func TestSort(t *testing.T) {
	s := policy.DefaultSettings()
	nodes := []corev1.Node{
		*testcluster.Node("a").Build(),
		*testcluster.Node("b").Enabled(s, names.CPURatioAnnotation, "3").Build(),
		*testcluster.Node("c").Enabled(s, names.CPURatioAnnotation, "2").Build(),
		*testcluster.Node("d").Build(),
	}
	in := Input{Nodes: nodes, Loads: map[string]kube.Load{"d": {Pods: 3}, "a": {Pods: 3}, "c": {Pods: 1}},
		Usage: kube.Usage{Nodes: map[string]kube.NodeUsage{"c": {Usage: testcluster.NodeMetrics("c", "2", "1Gi").Usage}, "a": {Usage: testcluster.NodeMetrics("a", "1", "1Gi").Usage}}}}
	for key, want := range map[string][]string{
		"name":      {"a", "b", "c", "d"},
		"cpu-extra": {"b", "c", "a", "d"},
		"pods":      {"a", "d", "c", "b"},
		"cpu-usage": {"c", "a", "b", "d"}, // unknown usage last
	} {
		r := Build(in)
		if err := r.Sort(key); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range r.Nodes {
			got = append(got, n.Name)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("--sort-by %s (-want +got):\n%s", key, diff)
		}
	}
	if err := Build(in).Sort("cpu"); err == nil {
		t.Error("--sort-by cpu accepted")
	}
}

// TestBuildHostileNode: a node whose records and policy annotation hold hostile text (an
// exponent ParseQuantity would spend hours on, a megabyte, terminal escapes) is reported fast,
// from its status alone, and none of that text reaches the report.
func TestBuildHostileNode(t *testing.T) {
	s := policy.DefaultSettings()
	long := strings.Repeat("9", 1<<20)
	for name, ann := range map[string]map[string]string{
		"exponent": {names.RawAnnotation: `{"allocatable":{"cpu":"1e-2000000000"}}`, names.AppliedAnnotation: `{"allocatable":{"cpu":"1e-2000000000"}}`,
			names.PolicyAnnotation: "1e-2000000000"},
		"long": {names.RawAnnotation: `{"allocatable":{"cpu":"` + long + `"}}`, names.AppliedAnnotation: `{"allocatable":{"cpu":"` + long + `"}}`,
			names.PolicyAnnotation: long},
		"escapes": {names.AppliedAnnotation: "", names.PolicyAnnotation: "\x1b[2J\x1b[31mpwned"},
	} {
		t.Run(name, func(t *testing.T) {
			n := testcluster.Node("n").Enabled(s).Build()
			for k, v := range ann {
				n.Annotations[k] = v
			}
			done := make(chan *SavingsReport)
			go func() { done <- Build(Input{Nodes: []corev1.Node{*n}, Usage: kube.Usage{Unavailable: "x"}}) }()
			var r *SavingsReport
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("still building the report after 5s")
			}
			// Unreadable records: the stored allocatable (x1.5 by the defaults) is all there is.
			want := []row{{Name: "n", Policy: "static", Enabled: true, CPURaw: "6", CPUAlloc: "6", CPUReq: "0", CPUUsage: "-", CPUExtra: "0",
				MemRaw: "8Gi", MemAlloc: "8Gi", MemReq: "0", MemUsage: "-", MemExtra: "0"}}
			if _, ok := ann[names.RawAnnotation]; !ok {
				want[0].CPURaw, want[0].CPUExtra = "4", "2"
			}
			var got []row
			for _, n := range r.Nodes {
				got = append(got, rowOf(n))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}
