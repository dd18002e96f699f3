package savings

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

// TestBuildFilter: a row is kept when it meets every bound; the total sums the kept rows only,
// and a node without a usage percentage never passes a usage bound.
func TestBuildFilter(t *testing.T) {
	s := policy.DefaultSettings()
	nodes := []corev1.Node{
		*testcluster.Node("x2").Enabled(s, names.CPURatioAnnotation, "2").Build(),         // 4 cpu raw, +4 extra
		*testcluster.Node("x15").Enabled(s, names.CPURatioAnnotation, "1.5").Build(),      // +2 extra
		*testcluster.Node("plain").Build(),                                                // no extra
		*testcluster.Node("idle").Enabled(s, names.CPURatioAnnotation, "2").Build(),       // +4, requests nothing
		*testcluster.Node("unmeasured").Enabled(s, names.CPURatioAnnotation, "2").Build(), // +4, no sample
	}
	load := func(milli int64) kube.Load {
		return kube.Load{Requests: requests.Amount{MilliCPU: milli, Memory: 1 << 30}, Pods: 1}
	}
	loads := map[string]kube.Load{"x2": load(4000), "x15": load(2000), "plain": load(1000), "unmeasured": load(1000)}
	sample := func(cpu string) kube.NodeUsage {
		return kube.NodeUsage{Usage: testcluster.NodeMetrics("", cpu, "512Mi").Usage}
	}
	usage := kube.Usage{Nodes: map[string]kube.NodeUsage{"x2": sample("1"), "x15": sample("1500m"), "plain": sample("100m"), "idle": sample("100m")}}
	type result struct {
		Rows       []string
		TotalNodes int
		TotalExtra string
		Filters    []string
	}
	for _, tc := range []struct {
		name   string
		filter Filter
		want   result
	}{
		{"none", Filter{}, result{Rows: []string{"idle", "plain", "unmeasured", "x15", "x2"}, TotalNodes: 5, TotalExtra: "14"}},
		{"min cpu extra", Filter{MinExtra: map[corev1.ResourceName]int64{corev1.ResourceCPU: 3000}},
			result{Rows: []string{"idle", "unmeasured", "x2"}, TotalNodes: 3, TotalExtra: "12", Filters: []string{"cpu extra at least 3"}}},
		{"extra bound is inclusive", Filter{MinExtra: map[corev1.ResourceName]int64{corev1.ResourceCPU: 2000}},
			result{Rows: []string{"idle", "unmeasured", "x15", "x2"}, TotalNodes: 4, TotalExtra: "14", Filters: []string{"cpu extra at least 2"}}},
		{"max cpu use percent: unmeasured and idle are out", Filter{MaxUsePercent: map[corev1.ResourceName]int64{corev1.ResourceCPU: 25}},
			result{Rows: []string{"plain", "x2"}, TotalNodes: 2, TotalExtra: "4", Filters: []string{"cpu usage at most 25% of requests"}}},
		{"both bounds", Filter{MinExtra: map[corev1.ResourceName]int64{corev1.ResourceCPU: 1}, MaxUsePercent: map[corev1.ResourceName]int64{corev1.ResourceCPU: 75}},
			result{Rows: []string{"x15", "x2"}, TotalNodes: 2, TotalExtra: "6", Filters: []string{"cpu extra at least 1m", "cpu usage at most 75% of requests"}}},
		{"memory bounds", Filter{MinExtra: map[corev1.ResourceName]int64{corev1.ResourceMemory: 1}, MaxUsePercent: map[corev1.ResourceName]int64{corev1.ResourceMemory: 50}},
			result{TotalExtra: "0", Filters: []string{"memory extra at least 1", "memory usage at most 50% of requests"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Build(Input{Nodes: nodes, Loads: loads, Usage: usage, Filter: tc.filter})
			got := result{TotalNodes: r.Total.Nodes, TotalExtra: r.Total.CPU.Extra.String(), Filters: r.Filters}
			for _, n := range r.Nodes {
				got.Rows = append(got.Rows, n.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuildNamespace: a namespace's report has no lost-node verdict, which needs every pod.
func TestBuildNamespace(t *testing.T) {
	n := testcluster.Node("x2").Enabled(policy.DefaultSettings(), names.CPURatioAnnotation, "2").Build()
	for _, tc := range []struct {
		namespace string
		want      bool
	}{{"", true}, {"shop", false}} {
		r := Build(Input{Nodes: []corev1.Node{*n}, Usage: kube.Usage{Unavailable: "none"}, Namespace: tc.namespace})
		if got := r.Total.WithoutLargestEnabled != nil; got != tc.want || r.Namespace != tc.namespace {
			t.Errorf("namespace %q: lost-node verdict %v, namespace %q; want %v", tc.namespace, got, r.Namespace, tc.want)
		}
	}
}

func TestParseThresholds(t *testing.T) {
	type result struct {
		V   int64
		Err string
	}
	errString := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	for _, tc := range []struct {
		name string
		got  func() (int64, error)
		want result
	}{
		{"cpu 500m", func() (int64, error) { return ParseMinExtra(corev1.ResourceCPU, "500m") }, result{V: 500}},
		{"cpu 2", func() (int64, error) { return ParseMinExtra(corev1.ResourceCPU, "2") }, result{V: 2000}},
		{"memory 1Gi", func() (int64, error) { return ParseMinExtra(corev1.ResourceMemory, "1Gi") }, result{V: 1 << 30}},
		{"memory word", func() (int64, error) { return ParseMinExtra(corev1.ResourceMemory, "big") }, result{Err: `must be a quantity such as "512Mi" or "2Gi"`}},
		{"negative", func() (int64, error) { return ParseMinExtra(corev1.ResourceCPU, "-1") }, result{Err: "must not be negative"}},
		{"percent", func() (int64, error) { return ParseMaxUsePercent("150") }, result{V: 150}},
		{"percent sign", func() (int64, error) { return ParseMaxUsePercent("50%") }, result{Err: "must be a whole number of percent, 0 or more (e.g. 50)"}},
		{"negative percent", func() (int64, error) { return ParseMaxUsePercent("-1") }, result{Err: "must be a whole number of percent, 0 or more (e.g. 50)"}},
	} {
		v, err := tc.got()
		if diff := cmp.Diff(tc.want, result{V: v, Err: errString(err)}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}
