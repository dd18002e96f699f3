package output

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

func TestTable(t *testing.T) {
	var b bytes.Buffer
	err := Table(&b, []string{"NODE", "CPU", "REASON"},
		[][]string{{"a", "4", "static policy: cpu x2"}, {"node-long", "3500m", ""}},
		[]string{"TOTAL", "7500m", ""})
	if err != nil {
		t.Fatal(err)
	}
	// Like kubectl get: left-aligned, two spaces between columns, no borders, no trailing blanks.
	want := "NODE       CPU    REASON\n" +
		"a          4      static policy: cpu x2\n" +
		"node-long  3500m\n" +
		"TOTAL      7500m\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEncode(t *testing.T) {
	v := struct {
		Kind  string `json:"kind"`
		Count int    `json:"count"`
	}{"X", 1}
	for format, want := range map[string]string{
		FormatJSON: "{\n    \"kind\": \"X\",\n    \"count\": 1\n}\n",
		FormatYAML: "count: 1\nkind: X\n",
	} {
		var b bytes.Buffer
		if err := Encode(&b, format, v); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, b.String()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", format, diff)
		}
	}
	if err := Encode(&bytes.Buffer{}, "xml", v); err == nil {
		t.Error("xml accepted")
	}
}

func TestQuantities(t *testing.T) {
	for _, tc := range []struct {
		name corev1.ResourceName
		v    int64
		want string
	}{
		{corev1.ResourceCPU, 4000, "+4"},
		{corev1.ResourceCPU, -500, "-500m"},
		{corev1.ResourceCPU, 0, "0"},
		{corev1.ResourceMemory, 1 << 30, "+1Gi"},
		{corev1.ResourceMemory, 1341826412, "+1341826412"},
	} {
		q := policy.Quantity(tc.name, tc.v)
		if got := Signed(tc.name, q); got != tc.want {
			t.Errorf("Signed(%s, %s) = %s, want %s", tc.name, q.String(), got, tc.want)
		}
		if got := SignedCell(corev1.ResourceList{tc.name: q}, tc.name); got != tc.want {
			t.Errorf("SignedCell(%s: %s) = %s, want %s", tc.name, q.String(), got, tc.want)
		}
	}
	// A value written in another form prints in the canonical one.
	if got := Signed(corev1.ResourceCPU, resource.MustParse("0.5")); got != "+500m" {
		t.Errorf("Signed(cpu, 0.5) = %s, want +500m", got)
	}
	for _, f := range []func(corev1.ResourceList, corev1.ResourceName) string{Cell, SignedCell} {
		if got := f(corev1.ResourceList{}, corev1.ResourceCPU); got != None {
			t.Errorf("missing cell %q", got)
		}
	}
}

// TestRecordedStatistic: the statistic of an applied record is read back exactly; a missing or
// unreadable one (the record is anyone's text) is no statistic at all.
func TestRecordedStatistic(t *testing.T) {
	st := policy.Statistic{CPUPercentile: 95, CPU: 1200, MemoryPercentile: 100, Memory: 5 << 30, Window: 3590 * time.Second, Samples: 240}
	for _, tc := range []struct {
		usage string
		want  *policy.Statistic
	}{
		{st.String(), &st},
		{"", nil},
		// The record's pattern lets p0 through; the statistic does not.
		{"cpuUsage=p0:1m,memoryUsage=p100:1,window=1s,samples=1", nil},
	} {
		got := RecordedStatistic(policy.Applied{Usage: tc.usage})
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.usage, diff)
		}
		if got != nil {
			if back := NewStatistic(got).Policy(); back != *got {
				t.Errorf("%q reported and read back as %+v", tc.usage, back)
			}
		}
	}
	if NewStatistic(nil) != nil {
		t.Error("NewStatistic(nil) is not nil")
	}
}
