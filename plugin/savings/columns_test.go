package savings

import (
	"encoding/csv"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

func TestPercentOf(t *testing.T) {
	for _, tc := range []struct {
		name        string
		part, whole int64
		want        string // "nil" for no ratio
	}{
		{"nothing requested", 500, 0, "nil"},
		{"negative requests are no ratio either", 500, -1, "nil"},
		{"nothing used", 0, 1000, "0"},
		{"exact", 250, 1000, "25"},
		{"half rounds up", 1, 200, "1"},
		{"just below half rounds down", 1, 201, "0"},
		{"above requests", 5 << 30, 4 << 30, "125"},
		// Bytes summed over many nodes: part × 100 overflows int64.
		{"no overflow", math.MaxInt64 / 2, math.MaxInt64, "50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := "nil"
			if p := percentOf(tc.part, tc.whole); p != nil {
				got = strings.TrimSuffix(percentCell(p), "%")
			}
			if got != tc.want {
				t.Errorf("percentOf(%d, %d) = %s, want %s", tc.part, tc.whole, got, tc.want)
			}
		})
	}
}

// usePct is a node's USE% cells as the table prints them.
type usePct struct{ Name, CPU, Memory string }

// TestUsagePercent: usage as a percentage of requests per node, "-" for a node whose pods
// request nothing, <unknown> without a sample; the total is over the measured nodes only.
func TestUsagePercent(t *testing.T) {
	nodes := []corev1.Node{
		*testcluster.Node("busy").Resources("4", "8Gi").Build(),
		*testcluster.Node("idle").Resources("4", "8Gi").Build(),
		*testcluster.Node("unmeasured").Resources("4", "8Gi").Build(),
	}
	loads := map[string]kube.Load{
		"busy":       {Requests: requests.Amount{MilliCPU: 2000, Memory: 4 << 30}, Pods: 2},
		"unmeasured": {Requests: requests.Amount{MilliCPU: 2000, Memory: 4 << 30}, Pods: 2},
	}
	measured := kube.Usage{Nodes: map[string]kube.NodeUsage{
		"busy": {Usage: testcluster.NodeMetrics("busy", "500m", "5Gi").Usage},
		"idle": {Usage: testcluster.NodeMetrics("idle", "100m", "1Gi").Usage},
	}}
	for _, tc := range []struct {
		name      string
		usage     kube.Usage
		want      []usePct
		wantTotal usePct
	}{{
		name:  "with metrics",
		usage: measured,
		want: []usePct{
			{"busy", "25%", "125%"},
			{"idle", "-", "-"},
			{"unmeasured", unknown, unknown},
		},
		// The measured nodes' usage (600m, 6Gi) over their requests (2, 4Gi): unmeasured's
		// requests would halve it.
		wantTotal: usePct{"TOTAL", "30%", "150%"},
	}, {
		name:      "without metrics",
		usage:     kube.Usage{Unavailable: "not served"},
		want:      []usePct{{"busy", unknown, unknown}, {"idle", unknown, unknown}, {"unmeasured", unknown, unknown}},
		wantTotal: usePct{"TOTAL", unknown, unknown},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := Build(Input{Nodes: nodes, Loads: loads, Usage: tc.usage})
			cell := func(a Amounts) string {
				if a.Usage == nil {
					return unknown
				}
				return percentCell(a.UsagePercentOfRequests)
			}
			var got []usePct
			for _, n := range r.Nodes {
				got = append(got, usePct{n.Name, cell(n.CPU), cell(n.Memory)})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTotal, usePct{"TOTAL", cell(r.Total.CPU), cell(r.Total.Memory)}); diff != "" {
				t.Errorf("total (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriteCSV: a header and one row per node, quantities in canonical form, the same columns
// with and without metrics (unknown amounts empty), no TOTAL row, and fields that need quoting
// quoted.
func TestWriteCSV(t *testing.T) {
	s := policy.DefaultSettings()
	static2 := testcluster.Node("static").Enabled(s, names.CPURatioAnnotation, "2").Build()
	plain := testcluster.Node("plain").Resources("2", "4Gi").Build()
	loads := map[string]kube.Load{"plain": {Requests: requests.Amount{MilliCPU: 1500, Memory: 1536 << 20}, Pods: 3}}
	for _, tc := range []struct {
		name  string
		usage kube.Usage
		want  [][]string
	}{{
		name:  "with metrics",
		usage: kube.Usage{Nodes: map[string]kube.NodeUsage{"plain": {Usage: testcluster.NodeMetrics("plain", "750m", "1Gi").Usage}}},
		want: [][]string{
			CSVHeader,
			{"plain", "false", "", "3", "2", "2", "1500m", "750m", "50", "0", "4Gi", "4Gi", "1536Mi", "1Gi", "67", "0", "", ""},
			{"static", "true", "static", "0", "4", "8", "0", "", "", "4", "8Gi", "8Gi", "0", "", "", "0", "", ""},
		},
	}, {
		name:  "without metrics",
		usage: kube.Usage{Unavailable: "not served"},
		want: [][]string{
			CSVHeader,
			{"plain", "false", "", "3", "2", "2", "1500m", "", "", "0", "4Gi", "4Gi", "1536Mi", "", "", "0", "", ""},
			{"static", "true", "static", "0", "4", "8", "0", "", "", "4", "8Gi", "8Gi", "0", "", "", "0", "", ""},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := Build(Input{Nodes: []corev1.Node{*static2, *plain}, Loads: loads, Usage: tc.usage}).WriteCSV(&b); err != nil {
				t.Fatal(err)
			}
			got, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
			if err != nil {
				t.Fatalf("the output is not CSV: %v\n%s", err, b.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

// lossRow is one resource of a Loss, as strings.
type lossRow struct {
	Node, Remaining, Requests string
	Fits                      bool
}

// TestWithoutLargestEnabled: each resource is weighed without the opted-in node with the most
// raw allocatable of it (a larger node not opted in stays), against all pods' requests, with
// "fits" at equality; equal nodes pick the first by name; no opted-in node, no verdict.
func TestWithoutLargestEnabled(t *testing.T) {
	s := policy.DefaultSettings()
	enabled := func(name, cpu, memory string) corev1.Node {
		return *testcluster.Node(name).Resources(cpu, memory).Enabled(s, names.CPURatioAnnotation, "2").Build()
	}
	wide := enabled("wide", "4", "16Gi")
	tall := enabled("tall", "8", "8Gi")
	big := *testcluster.Node("big").Resources("16", "32Gi").Build()
	load := func(cpuMilli, mem int64) map[string]kube.Load {
		return map[string]kube.Load{"big": {Requests: requests.Amount{MilliCPU: cpuMilli, Memory: mem}, Pods: 1}}
	}
	for _, tc := range []struct {
		name        string
		nodes       []corev1.Node
		loads       map[string]kube.Load
		want        []lossRow // cpu, memory; nil: no verdict
		wantTableIn string
	}{{
		// Raw 28 cpu, 56Gi; without tall (8 cpu) 20 left, without wide (16Gi) 40Gi left.
		name:  "fits at equality, a different node per resource",
		nodes: []corev1.Node{big, tall, wide},
		loads: load(20000, 40<<30),
		want:  []lossRow{{"tall", "20", "20", true}, {"wide", "40Gi", "40Gi", true}},
		wantTableIn: "If the largest opted-in node is lost, at raw allocatable: cpu fits (20 left >= 20 requested, without node/tall); " +
			"memory fits (40Gi left >= 40Gi requested, without node/wide). Resources only, not scheduling constraints",
	}, {
		name:  "one more unit does not fit",
		nodes: []corev1.Node{wide, tall, big},
		loads: load(20001, 40<<30+1),
		want:  []lossRow{{"tall", "20", "20001m", false}, {"wide", "40Gi", "42949672961", false}},
		wantTableIn: "cpu does not fit (20 left < 20001m requested, without node/tall); " +
			"memory does not fit (40Gi left < 42949672961 requested, without node/wide).",
	}, {
		name:        "equal nodes: the first by name",
		nodes:       []corev1.Node{enabled("y", "4", "8Gi"), enabled("x", "4", "8Gi")},
		want:        []lossRow{{"x", "4", "0", true}, {"x", "8Gi", "0", true}},
		wantTableIn: "cpu fits (4 left >= 0 requested, without node/x)",
	}, {
		name:  "no opted-in node",
		nodes: []corev1.Node{big},
		loads: load(1000, 1<<30),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := Build(Input{Nodes: tc.nodes, Loads: tc.loads, Usage: kube.Usage{Unavailable: "x"}})
			var got []lossRow
			if l := r.Total.WithoutLargestEnabled; l != nil {
				for _, f := range []LossFit{l.CPU, l.Memory} {
					got = append(got, lossRow{f.Node, f.Remaining.String(), f.Requests.String(), f.Fits})
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			var b strings.Builder
			if err := r.WriteTable(&b); err != nil {
				t.Fatal(err)
			}
			if tc.wantTableIn == "" {
				if strings.Contains(b.String(), "opted-in node is lost") {
					t.Errorf("a verdict without an opted-in node:\n%s", b.String())
				}
			} else if !strings.Contains(b.String(), tc.wantTableIn) {
				t.Errorf("the table lacks %q:\n%s", tc.wantTableIn, b.String())
			}
		})
	}
}
