package policy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/names"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func list(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func node(ann map[string]string) Node {
	return Node{
		Name:        "worker-1",
		Labels:      map[string]string{names.EnabledLabel: "true"},
		Annotations: ann,
		Allocatable: list("cpu", "3900m", "memory", "15Gi", "pods", "110", "ephemeral-storage", "90Gi"),
		Capacity:    list("cpu", "4", "memory", "16Gi", "pods", "110", "ephemeral-storage", "100Gi"),
	}
}

// values flattens a result into comparable strings ("alloc/cpu": "7800m").
func values(r Result) map[string]string {
	out := map[string]string{}
	for k, q := range r.Allocatable {
		out["alloc/"+string(k)] = canonical(q)
	}
	for k, q := range r.Capacity {
		out["cap/"+string(k)] = canonical(q)
	}
	return out
}

func canonical(q resource.Quantity) string {
	if q.Format == resource.DecimalSI && q.MilliValue()%1000 != 0 {
		return resource.NewMilliQuantity(q.MilliValue(), resource.DecimalSI).String()
	}
	return resource.NewQuantity(q.Value(), q.Format).String()
}

func TestComputeStatic(t *testing.T) {
	s := DefaultSettings()
	tests := []struct {
		name         string
		ann          map[string]string
		wantCPU      string // allocatable cpu
		wantCPUCap   string
		wantMem      string
		wantMemCap   string
		wantWarnings []string // substrings, in order
	}{
		{name: "cpu ratio 2", ann: map[string]string{names.CPURatioAnnotation: "2"},
			wantCPU: "7800m", wantCPUCap: "7900m", wantMem: "15Gi", wantMemCap: "16Gi"},
		{name: "default ratios", ann: nil,
			wantCPU: "5850m", wantCPUCap: "5950m", wantMem: "15Gi", wantMemCap: "16Gi"},
		{name: "memory opt-in", ann: map[string]string{names.MemoryRatioAnnotation: "1.25", names.CPURatioAnnotation: "1"},
			wantCPU: "3900m", wantCPUCap: "4", wantMem: "19200Mi", wantMemCap: "20224Mi"},
		{name: "not a number", ann: map[string]string{names.CPURatioAnnotation: "abc"},
			wantCPU: "3900m", wantCPUCap: "4", wantMem: "15Gi", wantMemCap: "16Gi",
			wantWarnings: []string{`invalid overcommit.dev/cpu-ratio "abc"`}},
		{name: "below one", ann: map[string]string{names.CPURatioAnnotation: "0.5"},
			wantCPU: "3900m", wantCPUCap: "4", wantMem: "15Gi", wantMemCap: "16Gi",
			wantWarnings: []string{`"0.5" is below 1`}},
		{name: "negative", ann: map[string]string{names.CPURatioAnnotation: "-1"},
			wantCPU: "3900m", wantCPUCap: "4", wantMem: "15Gi", wantMemCap: "16Gi",
			wantWarnings: []string{`invalid overcommit.dev/cpu-ratio "-1"`}},
		{name: "exponent is not a ratio", ann: map[string]string{names.CPURatioAnnotation: "1e9"},
			wantCPU: "3900m", wantCPUCap: "4", wantMem: "15Gi", wantMemCap: "16Gi",
			wantWarnings: []string{`invalid overcommit.dev/cpu-ratio "1e9"`}},
		{name: "huge is clamped to max", ann: map[string]string{names.CPURatioAnnotation: "999999", names.MemoryRatioAnnotation: "3"},
			wantCPU: "15600m", wantCPUCap: "15700m", wantMem: "23040Mi", wantMemCap: "24064Mi",
			wantWarnings: []string{`"999999" is above the maximum 4`, `"3" is above the maximum 1.5`}},
		{name: "unknown policy is static", ann: map[string]string{names.PolicyAnnotation: "magic", names.CPURatioAnnotation: "2"},
			wantCPU: "7800m", wantCPUCap: "7900m", wantMem: "15Gi", wantMemCap: "16Gi",
			wantWarnings: []string{`unknown overcommit.dev/policy "magic"`}},
		{name: "rounds down to the millicore", ann: map[string]string{names.CPURatioAnnotation: "1.333333"},
			wantCPU: "5199m", wantCPUCap: "5299m", wantMem: "15Gi", wantMemCap: "16Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(Input{Node: node(tt.ann), Writer: "system:node:worker-1", Now: now}, s)
			want := map[string]string{
				"alloc/cpu": tt.wantCPU, "cap/cpu": tt.wantCPUCap, "alloc/memory": tt.wantMem, "cap/memory": tt.wantMemCap,
				"alloc/pods": "110", "cap/pods": "110", "alloc/ephemeral-storage": "90Gi", "cap/ephemeral-storage": "100Gi",
			}
			if diff := cmp.Diff(want, values(got)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			checkWarnings(t, got.Warnings, tt.wantWarnings)
			if got.Fallback || got.Keep {
				t.Errorf("Fallback=%v Keep=%v, want false", got.Fallback, got.Keep)
			}
		})
	}
}

func checkWarnings(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("warnings = %q, want %d matching %q", got, len(want), want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

func TestComputeUsage(t *testing.T) {
	s := DefaultSettings() // margin 0.2
	fresh := now.Add(-30 * time.Second)
	usageAnn := func(cpuRatio string) map[string]string {
		return map[string]string{names.PolicyAnnotation: "usage", names.CPURatioAnnotation: cpuRatio, names.MemoryRatioAnnotation: "1.5"}
	}
	tests := []struct {
		name         string
		ann          map[string]string
		usage        *UsageSample
		unavailable  string
		wantCPU      string
		wantMem      string
		wantFallback bool
		wantWarnings []string
	}{
		{name: "reclaims unused requests", ann: usageAnn("4"),
			usage:   &UsageSample{Requests: list("cpu", "8", "memory", "8Gi"), Usage: list("cpu", "2", "memory", "4Gi"), Timestamp: fresh},
			wantCPU: "9500m" /* 3900 + 8000 - 2400 */, wantMem: "18636Mi" /* 15Gi + 8Gi - 4.8Gi = 18636.8Mi */},
		{name: "nanocores as metrics-server reports them, rounded up", ann: usageAnn("4"),
			usage:   &UsageSample{Requests: list("cpu", "8", "memory", "8Gi"), Usage: list("cpu", "1999000001n", "memory", "4Gi"), Timestamp: fresh},
			wantCPU: "9500m" /* 3900 + 8000 - 1.2 * 2000 */, wantMem: "18636Mi"},
		{name: "capped by the ratio", ann: usageAnn("2"),
			usage:   &UsageSample{Requests: list("cpu", "8", "memory", "1Gi"), Usage: list("cpu", "2", "memory", "1Gi"), Timestamp: fresh},
			wantCPU: "7800m", wantMem: "15Gi"},
		{name: "never below raw", ann: usageAnn("4"),
			usage:   &UsageSample{Requests: list("cpu", "1", "memory", "1Gi"), Usage: list("cpu", "3", "memory", "2Gi"), Timestamp: fresh},
			wantCPU: "3900m", wantMem: "15Gi"},
		{name: "no pods", ann: usageAnn("4"),
			usage:   &UsageSample{Requests: corev1.ResourceList{}, Usage: list("cpu", "100m", "memory", "1Gi"), Timestamp: fresh},
			wantCPU: "3900m", wantMem: "15Gi"},
		{name: "caches not ready", ann: usageAnn("4"), unavailable: "pod cache not synced",
			wantCPU: "3900m", wantMem: "15Gi", wantFallback: true, wantWarnings: []string{"pod cache not synced"}},
		{name: "no metrics for the node", ann: usageAnn("4"),
			usage:   &UsageSample{Requests: list("cpu", "8")},
			wantCPU: "3900m", wantMem: "15Gi", wantFallback: true, wantWarnings: []string{"no metrics for node worker-1"}},
		{name: "stale metrics", ann: usageAnn("4"),
			usage:   &UsageSample{Requests: list("cpu", "8"), Usage: list("cpu", "1", "memory", "1Gi"), Timestamp: now.Add(-10 * time.Minute)},
			wantCPU: "3900m", wantMem: "15Gi", wantFallback: true, wantWarnings: []string{"are 10m0s old (max 3m0s)"}},
		{name: "memory not measured", ann: usageAnn("4"),
			usage:   &UsageSample{Requests: list("cpu", "8"), Usage: list("cpu", "2"), Timestamp: fresh},
			wantCPU: "9500m", wantMem: "15Gi", wantFallback: true, wantWarnings: []string{"no memory usage measured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(Input{Node: node(tt.ann), Writer: "system:node:worker-1", Usage: tt.usage, UsageUnavailable: tt.unavailable, Now: now}, s)
			gv := values(got)
			if diff := cmp.Diff(map[string]string{"cpu": tt.wantCPU, "memory": tt.wantMem},
				map[string]string{"cpu": gv["alloc/cpu"], "memory": roundMi(got.Allocatable.Memory())}); diff != "" {
				t.Errorf("allocatable (-want +got):\n%s", diff)
			}
			checkCapacityMoved(t, node(tt.ann), got)
			if got.Fallback != tt.wantFallback {
				t.Errorf("Fallback = %v, want %v", got.Fallback, tt.wantFallback)
			}
			checkWarnings(t, got.Warnings, tt.wantWarnings)
		})
	}
}

func roundMi(q *resource.Quantity) string {
	return resource.NewQuantity(q.Value()/(1<<20)*(1<<20), resource.BinarySI).String()
}

// checkCapacityMoved asserts C' - C == A' - A for cpu and memory: kubelet reserved stays true.
func checkCapacityMoved(t *testing.T, in Node, got Result) {
	t.Helper()
	for _, name := range Resources {
		a, a2, c, c2 := in.Allocatable[name], got.Allocatable[name], in.Capacity[name], got.Capacity[name]
		if Amount(name, c2)-Amount(name, c) != Amount(name, a2)-Amount(name, a) {
			t.Errorf("%s: capacity moved %d, allocatable %d", name, Amount(name, c2)-Amount(name, c), Amount(name, a2)-Amount(name, a))
		}
	}
}

func TestComputeNeverCompounds(t *testing.T) {
	s := DefaultSettings()
	first := Compute(Input{Node: node(map[string]string{names.CPURatioAnnotation: "2"}), Writer: "system:node:worker-1", Now: now}, s)
	stored := storedNode(t, node(map[string]string{names.CPURatioAnnotation: "2"}), first)

	tests := []struct {
		name     string
		writer   string
		mutate   func(*Node)
		update   bool // an UPDATE whose oldObject holds what is stored
		wantCPU  string
		wantKeep bool
		wantWarn []string
	}{
		{name: "heartbeat by a controller", writer: "system:serviceaccount:kube-system:node-controller", wantCPU: "7800m"},
		{name: "kubectl status patch", writer: "kubernetes-admin", wantCPU: "7800m"},
		{name: "kubelet re-sends its raw view", writer: "system:node:worker-1",
			mutate: func(n *Node) { n.Allocatable = node(nil).Allocatable; n.Capacity = node(nil).Capacity }, wantCPU: "7800m"},
		{name: "kubelet reports a new raw allocatable", writer: "system:node:worker-1",
			mutate: func(n *Node) {
				n.Allocatable = list("cpu", "7900m", "memory", "15Gi", "pods", "110")
				n.Capacity = list("cpu", "8", "memory", "16Gi", "pods", "110")
			}, wantCPU: "15800m"},
		{name: "another kubelet's identity is not the node's", writer: "system:node:worker-2", wantCPU: "7800m"},
		{name: "raw record lost", writer: "kubernetes-admin",
			mutate:  func(n *Node) { delete(n.Annotations, names.RawAnnotation) },
			wantCPU: "7800m", wantKeep: true, wantWarn: []string{"overcommit.dev/raw is missing"}},
		{name: "raw record corrupt", writer: "kubernetes-admin",
			mutate:  func(n *Node) { n.Annotations[names.RawAnnotation] = "{not json" },
			wantCPU: "7800m", wantKeep: true, wantWarn: []string{"overcommit.dev/raw is unreadable"}},
		{name: "applied record corrupt: raw is the base", writer: "kubernetes-admin",
			mutate:  func(n *Node) { n.Annotations[names.AppliedAnnotation] = "[]" },
			wantCPU: "7800m", wantWarn: []string{"overcommit.dev/applied is unreadable"}},
		{name: "applied record lost: raw is the base", writer: "kubernetes-admin",
			mutate:  func(n *Node) { delete(n.Annotations, names.AppliedAnnotation) },
			wantCPU: "7800m", wantWarn: []string{"overcommit.dev/applied is missing"}},
		{name: "applied record lost, kubelet diff without allocatable: raw is the base", writer: "system:node:worker-1", update: true,
			mutate:  func(n *Node) { delete(n.Annotations, names.AppliedAnnotation) },
			wantCPU: "7800m", wantWarn: []string{"overcommit.dev/applied is missing"}},
		{name: "both records lost: the stored value is taken as raw", writer: "kubernetes-admin",
			mutate: func(n *Node) {
				delete(n.Annotations, names.AppliedAnnotation)
				delete(n.Annotations, names.RawAnnotation)
			},
			wantCPU: "15600m"},
		{name: "kubelet diff patch without allocatable: our output is not compounded", writer: "system:node:worker-1", update: true,
			wantCPU: "7800m"},
		{name: "kubelet CREATE carrying our output is taken as the kubelet's", writer: "system:node:worker-1",
			wantCPU: "15600m"},
		{name: "kubelet diff changing allocatable to a new raw value", writer: "system:node:worker-1", update: true,
			mutate: func(n *Node) {
				n.Allocatable = list("cpu", "1900m", "memory", "15Gi", "pods", "110")
				n.Capacity = list("cpu", "2", "memory", "16Gi", "pods", "110")
			}, wantCPU: "3800m"},
		{name: "raw record forged in an unreadable spelling", writer: "kubernetes-admin",
			mutate:  func(n *Node) { n.Annotations[names.RawAnnotation] = `{"allocatable":{"cpu":"1e-2000000000"}}` },
			wantCPU: "7800m", wantKeep: true, wantWarn: []string{"overcommit.dev/raw is unreadable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := cloneNode(stored)
			if tt.mutate != nil {
				tt.mutate(&n)
			}
			in := Input{Node: n, Writer: tt.writer, Now: now}
			if tt.update {
				in.Update, in.OldAllocatable = true, stored.Allocatable
			}
			got := Compute(in, s)
			if q := got.Allocatable[corev1.ResourceCPU]; q.String() != tt.wantCPU {
				t.Errorf("cpu = %s, want %s", q.String(), tt.wantCPU)
			}
			if got.Keep != tt.wantKeep {
				t.Errorf("Keep = %v, want %v", got.Keep, tt.wantKeep)
			}
			checkWarnings(t, got.Warnings, tt.wantWarn)
		})
	}
}

// TestComputeRepeatedWrites feeds the result back 100 times, as heartbeats that do not carry
// allocatable would: it must stay where the first write put it.
func TestComputeRepeatedWrites(t *testing.T) {
	s := DefaultSettings()
	n := node(map[string]string{names.CPURatioAnnotation: "2", names.MemoryRatioAnnotation: "1.5"})
	for i := 0; i < 100; i++ {
		writer := "kwok"
		if i == 0 || i%10 == 0 {
			writer = "system:node:worker-1"
			// The kubelet always carries its own raw view.
			n.Allocatable[corev1.ResourceCPU] = resource.MustParse("3900m")
			n.Allocatable[corev1.ResourceMemory] = resource.MustParse("15Gi")
			n.Capacity[corev1.ResourceCPU] = resource.MustParse("4")
			n.Capacity[corev1.ResourceMemory] = resource.MustParse("16Gi")
		}
		res := Compute(Input{Node: n, Writer: writer, Now: now}, s)
		n = storedNode(t, n, res)
		if got := n.Allocatable[corev1.ResourceCPU]; got.MilliValue() != 7800 {
			t.Fatalf("write %d by %s: cpu = %s, want 7800m", i, writer, got.String())
		}
		if got := n.Allocatable[corev1.ResourceMemory]; got.Value() != 15<<30*3/2 {
			t.Fatalf("write %d by %s: memory = %s, want 23040Mi", i, writer, got.String())
		}
	}
}

// storedNode is what the apiserver stores after the webhook's result: the new lists and annotations.
func storedNode(t testing.TB, in Node, res Result) Node {
	t.Helper()
	out := cloneNode(in)
	out.Allocatable, out.Capacity = overlay(res.Allocatable, nil), overlay(res.Capacity, nil)
	out.Annotations[names.RawAnnotation] = res.RawRecord
	out.Annotations[names.AppliedAnnotation] = res.AppliedRecord
	return out
}

func cloneNode(n Node) Node {
	out := n
	out.Annotations = map[string]string{}
	for k, v := range n.Annotations {
		out.Annotations[k] = v
	}
	out.Allocatable, out.Capacity = overlay(n.Allocatable, nil), overlay(n.Capacity, nil)
	return out
}

func TestSettingsValidate(t *testing.T) {
	ok := DefaultSettings()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := []func(*Settings){
		func(s *Settings) { s.CPU.Max = 500_000 },
		func(s *Settings) { s.CPU.Default = 5 * One },
		func(s *Settings) { s.Memory.Default = 0 },
		func(s *Settings) { s.UsageMargin = -1 },
		func(s *Settings) { s.MaxMetricsAge = 0 },
	}
	for i, mutate := range bad {
		s := DefaultSettings()
		mutate(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("case %d: Validate() = nil, want an error", i)
		}
	}
}

func TestAppliedAnnotationFormat(t *testing.T) {
	res := Compute(Input{Node: node(map[string]string{names.CPURatioAnnotation: "2"}), Now: now}, DefaultSettings())
	got := res.AppliedRecord
	want := `{"policy":"static","cpuRatio":"2","memoryRatio":"1","allocatable":{"cpu":"7800m","memory":"16106127360"},"capacity":{"cpu":"7900m","memory":"17179869184"}}`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("applied annotation (-want +got):\n%s", diff)
	}
	back, err := ParseApplied(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(res.Applied, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestSettingsJSON(t *testing.T) {
	s := DefaultSettings()
	s.CPU.Max = MustParseRatio("2.5")
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cpu":{"default":"1.5","max":"2.5"},"memory":{"default":"1","max":"1.5"},"usageMargin":"0.2","maxMetricsAge":"3m0s"}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var back Settings
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{}`, `{"cpu":{"default":"x","max":"2"}}`, strings.Replace(want, `"max":"2.5"`, `"max":"1.2"`, 1)} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("Unmarshal(%s) = nil, want an error", bad)
		}
	}
}

func TestValidateRatio(t *testing.T) {
	l := Limits{Default: One, Max: 4 * One}
	for in, wantErr := range map[string]string{"2": "", "4": "", "1": "", "0.5": "must be at least 1", "x": `invalid cpu ratio "x"`,
		"-1": `invalid cpu ratio "-1"`, "4.5": "the webhook allows at most 4", "1e9": `invalid cpu ratio "1e9"`, "999999": "at most 4"} {
		_, err := ValidateRatio("cpu", in, l)
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("ValidateRatio(%q) = %v, want %q", in, err, wantErr)
		}
	}
}

// TestRecordsAreJSON: the records are written by hand in the one layout CEL can also write, and
// stay JSON that encoding/json reads back to the same values.
func TestRecordsAreJSON(t *testing.T) {
	res := Compute(Input{Node: node(map[string]string{names.CPURatioAnnotation: "1.5", names.MemoryRatioAnnotation: "1.25"}), Now: now}, DefaultSettings())
	var raw Snapshot
	if err := json.Unmarshal([]byte(res.RawRecord), &raw); err != nil {
		t.Fatalf("raw record %s: %v", res.RawRecord, err)
	}
	var applied Applied
	if err := json.Unmarshal([]byte(res.AppliedRecord), &applied); err != nil {
		t.Fatalf("applied record %s: %v", res.AppliedRecord, err)
	}
	for _, c := range []struct {
		name      string
		got, want corev1.ResourceList
	}{
		{"raw allocatable", raw.Allocatable, res.Raw.Allocatable}, {"raw capacity", raw.Capacity, res.Raw.Capacity},
		{"applied allocatable", applied.Allocatable, res.Applied.Allocatable}, {"applied capacity", applied.Capacity, res.Applied.Capacity},
	} {
		if !sameResources(c.got, c.want) || len(c.got) != len(c.want) {
			t.Errorf("%s: JSON reads %v, want %v", c.name, c.got, c.want)
		}
	}
}
