package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

func TestStatisticRecord(t *testing.T) {
	for _, st := range []Statistic{
		{CPUPercentile: 95, CPU: 1234, MemoryPercentile: 100, Memory: 5678, Window: 3590 * time.Second, Samples: 240},
		{CPUPercentile: 1, CPU: 0, MemoryPercentile: 1, Memory: 0, Window: 0, Samples: 1, WarmingUp: true},
		{CPUPercentile: 100, CPU: 99999999999999999, MemoryPercentile: 100, Memory: 99999999999999999, Window: 9999999 * time.Second, Samples: 999999, WarmingUp: true},
	} {
		text := st.String()
		if len(text) > MaxStatisticLength {
			t.Errorf("%q is longer than MaxStatisticLength %d", text, MaxStatisticLength)
		}
		got, err := ParseStatistic(text)
		if err != nil {
			t.Errorf("%q: %v", text, err)
			continue
		}
		if diff := cmp.Diff(st, got); diff != "" {
			t.Errorf("%q reads back (-want +got):\n%s", text, diff)
		}
	}
	for _, s := range []string{"", "cpuUsage=p0:1m,memoryUsage=p100:1,window=1s,samples=1", "cpuUsage=p101:1m,memoryUsage=p100:1,window=1s,samples=1",
		"cpuUsage=p95:1,memoryUsage=p100:1,window=1s,samples=1", "cpuUsage=p95:-1m,memoryUsage=p100:1,window=1s,samples=1",
		"cpuUsage=p95:1m,memoryUsage=p100:1,window=1s,samples=1,cooling"} {
		if _, err := ParseStatistic(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	want := "cpu p95 1234m, memory max 5678 over 59m50s (240 samples)"
	if got := (Statistic{CPUPercentile: 95, CPU: 1234, MemoryPercentile: 100, Memory: 5678, Window: 3590 * time.Second, Samples: 240}).Describe(); got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}

func TestPublishedTargetWithStatistic(t *testing.T) {
	st := &Statistic{CPUPercentile: 95, CPU: 2000, MemoryPercentile: 100, Memory: 4 << 30, Window: time.Hour, Samples: 240}
	target := UsageTarget{"cpu": 5600, "memory": 3435973836}
	text := target.Format(st)
	if want := "cpu=5600m,memory=3435973836,cpuUsage=p95:2000m,memoryUsage=p100:4294967296,window=3600s,samples=240"; text != want {
		t.Fatalf("Format = %q, want %q", text, want)
	}
	gotT, gotS, err := ParsePublishedTarget(text)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(target, gotT); diff != "" {
		t.Errorf("target (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(st, gotS); diff != "" {
		t.Errorf("statistic (-want +got):\n%s", diff)
	}
	if _, _, err := ParsePublishedTarget(text + ",x"); err == nil {
		t.Errorf("a trailing field was accepted")
	}
	if got := target.Format(nil); got != target.String() {
		t.Errorf("Format(nil) = %q", got)
	}
}

// TestComputeUsageStatistic: the applied record names the statistic the usage policy used, from
// a live sample (webhook mode) or the published target (policy mode), and while the window warms
// up the node counts as fully used: allocatable is held at its pods' requests within [raw, ceiling].
func TestComputeUsageStatistic(t *testing.T) {
	s := DefaultSettings()
	st := Statistic{CPUPercentile: 95, CPU: 2000, MemoryPercentile: 100, Memory: 4 << 30, Window: time.Hour, Samples: 240}
	warm := st
	warm.Window, warm.Samples, warm.WarmingUp = 3*time.Minute, 12, true
	confirmed := now.Add(-10 * time.Second)
	sample := func(req string, st Statistic) *UsageSample {
		return &UsageSample{Requests: list("cpu", req, "memory", "8Gi"), Usage: list("cpu", "2", "memory", "4Gi"), Timestamp: now, Statistic: &st}
	}
	// Raw allocatable 3900m; cpu ratio 4 (ceiling 15600m); margin 0.2.
	tests := []struct {
		name        string
		sample      *UsageSample
		published   string
		wantCPU     string
		wantUsage   string
		wantWarning string
	}{
		{name: "window", sample: sample("8", st), wantCPU: "9500m", wantUsage: st.String()},
		{name: "warming up: held at requests", sample: sample("8", warm), wantCPU: "8", wantUsage: warm.String(), wantWarning: "warming up"},
		{name: "warming up: requests below raw keep raw", sample: sample("1", warm), wantCPU: "3900m", wantUsage: warm.String(), wantWarning: "warming up"},
		{name: "warming up: requests above the ceiling", sample: sample("40", warm), wantCPU: "15600m", wantUsage: warm.String(), wantWarning: "warming up"},
		{name: "published with statistic", published: UsageTarget{"cpu": 5600, "memory": 0}.Format(&st), wantCPU: "9500m", wantUsage: st.String()},
		{name: "published warm-up target", published: WarmupTarget(list("cpu", "8", "memory", "8Gi"), map[corev1.ResourceName]int64{"cpu": 3900, "memory": 15 << 30}).Format(&warm), wantCPU: "8", wantUsage: warm.String(), wantWarning: "warming up"},
		{name: "published without statistic", published: "cpu=5600m,memory=0", wantCPU: "9500m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ann := map[string]string{names.PolicyAnnotation: "usage", names.CPURatioAnnotation: "4"}
			if tt.published != "" {
				ann[names.UsageTargetAnnotation] = tt.published
			}
			n := node(ann)
			n.Heartbeat = now
			s.TargetsConfirmedAt = confirmed
			got := Compute(Input{Node: n, Writer: "system:node:worker-1", Now: now, Usage: tt.sample}, s)
			if diff := cmp.Diff(tt.wantCPU, values(got)["alloc/cpu"]); diff != "" {
				t.Errorf("allocatable cpu (-want +got):\n%s", diff)
			}
			if got.Applied.Usage != tt.wantUsage {
				t.Errorf("Applied.Usage = %q, want %q", got.Applied.Usage, tt.wantUsage)
			}
			a, err := ParseApplied(got.AppliedRecord)
			if err != nil || a.Usage != tt.wantUsage {
				t.Errorf("applied record %q reads usage %q (%v), want %q", got.AppliedRecord, a.Usage, err, tt.wantUsage)
			}
			if tt.wantWarning != "" {
				checkWarnings(t, got.Warnings, []string{tt.wantWarning})
			} else if len(got.Warnings) > 0 {
				t.Errorf("warnings %q", got.Warnings)
			}
			checkCapacityMoved(t, n, got)
		})
	}
}
