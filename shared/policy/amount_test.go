package policy

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// TestComputeAbsurdAmounts: an amount the policy cannot hold exactly leaves its resource as the
// kubelet reported it; it never becomes negative, zero, or a rounded value.
func TestComputeAbsurdAmounts(t *testing.T) {
	s := DefaultSettings()
	s.Memory.Max = 2 * One
	ann := map[string]string{names.CPURatioAnnotation: "2", names.MemoryRatioAnnotation: "2"}
	tests := []struct {
		name            string
		alloc, capacity corev1.ResourceList
		wantAlloc       corev1.ResourceList
		wantCap         corev1.ResourceList
		wantWarn        string
	}{
		{name: "cpu capacity of 8e15 cores",
			alloc: list("cpu", "4e15", "memory", "1Gi"), capacity: list("cpu", "8e15", "memory", "1Gi"),
			wantAlloc: list("cpu", "4e15", "memory", "2Gi"), wantCap: list("cpu", "8e15", "memory", "2Gi"),
			wantWarn: "is above the largest amount"},
		{name: "memory of 6Ei",
			alloc: list("cpu", "1", "memory", "6Ei"), capacity: list("cpu", "1", "memory", "7Ei"),
			wantAlloc: list("cpu", "2", "memory", "6Ei"), wantCap: list("cpu", "2", "memory", "7Ei"),
			wantWarn: "memory 6Ei is above"},
		{name: "cpu 10P", alloc: list("cpu", "10P"), capacity: list("cpu", "10P"),
			wantAlloc: list("cpu", "10P"), wantCap: list("cpu", "10P"), wantWarn: "cpu 10P is above"},
		{name: "cpu MaxInt64", alloc: list("cpu", "9223372036854775807"), capacity: list("cpu", "9223372036854775807"),
			wantAlloc: list("cpu", "9223372036854775807"), wantCap: list("cpu", "9223372036854775807"), wantWarn: "is above"},
		{name: "cpu 1e400", alloc: list("cpu", "1e400"), capacity: list("cpu", "1e400"),
			wantAlloc: list("cpu", "1e400"), wantCap: list("cpu", "1e400"), wantWarn: "is above"},
		{name: "sub-millicore cpu", alloc: list("cpu", "1500u"), capacity: list("cpu", "1"),
			wantAlloc: list("cpu", "1500u"), wantCap: list("cpu", "1"), wantWarn: "not a whole number of millicores"},
		{name: "fractional bytes", alloc: list("memory", "1500m"), capacity: list("memory", "2"),
			wantAlloc: list("memory", "1500m"), wantCap: list("memory", "2"), wantWarn: "not a whole number of bytes"},
		{name: "zero stays zero", alloc: list("cpu", "0"), capacity: list("cpu", "0"),
			wantAlloc: list("cpu", "0"), wantCap: list("cpu", "0")},
		{name: "the largest amount is doubled exactly",
			alloc: list("cpu", "36028797018963968m"), capacity: list("cpu", "36028797018963968m"),
			wantAlloc: list("cpu", "72057594037927936m"), wantCap: list("cpu", "72057594037927936m")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Node{Name: "n", Labels: map[string]string{names.EnabledLabel: "true"}, Annotations: ann,
				Allocatable: tt.alloc, Capacity: tt.capacity}
			got := Compute(Input{Node: n, Writer: "system:node:n", Now: now}, s)
			if diff := cmp.Diff(canonicalList(tt.wantAlloc), canonicalList(got.Allocatable)); diff != "" {
				t.Errorf("allocatable (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(canonicalList(tt.wantCap), canonicalList(got.Capacity)); diff != "" {
				t.Errorf("capacity (-want +got):\n%s", diff)
			}
			if tt.wantWarn != "" && !strings.Contains(strings.Join(got.Warnings, "\n"), tt.wantWarn) {
				t.Errorf("warnings %q lack %q", got.Warnings, tt.wantWarn)
			}
		})
	}
}

func canonicalList(l corev1.ResourceList) map[string]string {
	out := map[string]string{}
	for k, q := range l {
		out[string(k)] = q.String()
	}
	return out
}

func TestParseRecords(t *testing.T) {
	raw := `{"allocatable":{"cpu":"3900m","memory":"15Gi"},"capacity":{"cpu":"4","memory":"16Gi"}}`
	snap, err := ParseRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	back := rawRecordOf(snap)
	if back != raw {
		t.Errorf("round trip: %s, want %s", back, raw)
	}
	for _, bad := range []string{
		``, `{}`, `{"allocatable":{}}`, `{"allocatable":{"cpu":"1e-2000000000"}}`, `{"allocatable":{"cpu":"1.5"}}`,
		`{"allocatable":{"cpu":"1"}} `, `{"allocatable":{"cpu":"1","cpu":"2"}}`, `{"allocatable": {"cpu":"1"}}`,
		`{"allocatable":{"cpu":"` + strings.Repeat("9", 20) + `"}}`, `{"allocatable":{"cpu":"1"}` + strings.Repeat(" ", 2000) + `}`,
	} {
		if _, err := ParseRaw(bad); err == nil {
			t.Errorf("ParseRaw(%.60q) = nil error", bad)
		}
	}
	applied := `{"policy":"static","cpuRatio":"2","memoryRatio":"1","allocatable":{"cpu":"7800m","memory":"15Gi"},"capacity":{"cpu":"7900m","memory":"16Gi"}}`
	a, err := ParseApplied(applied)
	if err != nil {
		t.Fatal(err)
	}
	if back := appliedRecordOf(a, nil, nil); back != applied {
		t.Errorf("round trip: %s, want %s", back, applied)
	}
	for _, bad := range []string{`[]`, `{"policy":"static"}`, `{"allocatable":{"cpu":"1"},"x":{"allocatable":{"cpu":"2"}}}`} {
		if _, err := ParseApplied(bad); err == nil {
			t.Errorf("ParseApplied(%q) = nil error", bad)
		}
	}
}

// TestAmountSaturates: Amount rounds up and saturates at the int64 bounds, where
// Quantity.MilliValue and Value wrap (1e400 cores read as 0 millicores).
func TestAmountSaturates(t *testing.T) {
	tests := []struct {
		name corev1.ResourceName
		q    string
		want int64
	}{
		{"cpu", "3900m", 3900},
		{"cpu", "1500u", 2},
		{"cpu", "1n", 1},
		{"cpu", "8e15", 8e18},
		{"cpu", "9223372036854775807m", math.MaxInt64},
		{"cpu", "9223372036854775806m", math.MaxInt64 - 1},
		{"cpu", "9223372036854775807", math.MaxInt64},
		{"cpu", "10P", math.MaxInt64},
		{"cpu", "1e400", math.MaxInt64},
		{"cpu", "18446744073709551616", math.MaxInt64},
		{"cpu", "-1e400", math.MinInt64},
		{"cpu", "-9223372036854775807", math.MinInt64},
		{"memory", "15Gi", 15 << 30},
		{"memory", "7Ei", 7 << 60},
		{"memory", "8Ei", math.MaxInt64},
		{"memory", "1e19", math.MaxInt64},
		{"memory", "1e400", math.MaxInt64},
		{"memory", "-1e400", math.MinInt64},
		{"memory", "1500m", 2},
	}
	for _, tt := range tests {
		if got := Amount(tt.name, resource.MustParse(tt.q)); got != tt.want {
			t.Errorf("Amount(%s, %s) = %d, want %d", tt.name, tt.q, got, tt.want)
		}
	}
}

// TestValue: Value is Amount of a list's entry, and 0 for an entry the list does not have.
func TestValue(t *testing.T) {
	l := list("cpu", "1500u", "memory", "8Ei")
	got := []int64{Value(l, corev1.ResourceCPU), Value(l, corev1.ResourceMemory), Value(l, corev1.ResourcePods), Value(nil, corev1.ResourceCPU)}
	if diff := cmp.Diff([]int64{2, math.MaxInt64, 0, 0}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestComputeAbsurdUsage: a live usage sample the policy cannot hold leaves the resource raw with
// a warning; it is never read as a small usage (which would reclaim every request).
func TestComputeAbsurdUsage(t *testing.T) {
	for _, used := range []string{"1e400", "9223372036854775807", "10P", "18446744073709551616"} {
		t.Run(used, func(t *testing.T) {
			sample := &UsageSample{Requests: list("cpu", "8", "memory", "8Gi"), Usage: list("cpu", used, "memory", "1Gi"), Timestamp: now}
			ann := map[string]string{names.PolicyAnnotation: names.PolicyUsage, names.CPURatioAnnotation: "4"}
			got := Compute(Input{Node: node(ann), Writer: names.KubeletUser("worker-1"), Usage: sample, Now: now}, DefaultSettings())
			if q := got.Allocatable[corev1.ResourceCPU]; q.String() != "3900m" {
				t.Errorf("cpu = %s, want the raw 3900m", q.String())
			}
			checkWarnings(t, got.Warnings, []string{"is above the largest amount overcommit handles; no cpu overcommit"})
			if !got.Fallback {
				t.Error("not counted as a fallback")
			}
		})
	}
}
