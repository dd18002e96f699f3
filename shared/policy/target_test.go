package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// TestComputePublishedTarget: a node's published target gives what the live sample it was
// computed from gives, while the settings confirm it fresh by the node's own clock.
func TestComputePublishedTarget(t *testing.T) {
	sample := UsageSample{Requests: list("cpu", "8", "memory", "8Gi"), Usage: list("cpu", "2", "memory", "4Gi"), Timestamp: now}
	target, problems := TargetFromSample(sample, DefaultSettings().UsageMargin)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if got, want := target.String(), "cpu=5600m,memory=3435973836"; got != want {
		t.Fatalf("target %s, want %s", got, want)
	}
	confirmed := now.Add(-10 * time.Second)
	tests := []struct {
		name         string
		record       string // "" for none
		confirmed    time.Time
		heartbeat    time.Time
		wantCPU      string
		wantFallback string
	}{
		{name: "fresh", record: target.String(), confirmed: confirmed, heartbeat: now, wantCPU: "9500m"},
		{name: "heartbeat older than the confirmation", record: target.String(), confirmed: confirmed, heartbeat: now.Add(-time.Hour), wantCPU: "9500m"},
		{name: "confirmation too old", record: target.String(), confirmed: now.Add(-4 * time.Minute), heartbeat: now, wantCPU: "3900m", wantFallback: "last confirmed 4m0s before"},
		{name: "never confirmed", record: target.String(), heartbeat: now, wantCPU: "3900m", wantFallback: "never confirmed"},
		{name: "no heartbeat", record: target.String(), confirmed: confirmed, wantCPU: "3900m", wantFallback: "no condition heartbeat"},
		{name: "no record", confirmed: confirmed, heartbeat: now, wantCPU: "3900m", wantFallback: "no published usage target"},
		{name: "unreadable record", record: "cpu=1e9m,memory=0", confirmed: confirmed, heartbeat: now, wantCPU: "3900m", wantFallback: "unreadable"},
		{name: "negative reclaim keeps raw", record: "cpu=-8000m,memory=-1", confirmed: confirmed, heartbeat: now, wantCPU: "3900m"},
		{name: "clamped to the ratio", record: "cpu=99999999999999999m,memory=0", confirmed: confirmed, heartbeat: now, wantCPU: "15600m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ann := map[string]string{names.PolicyAnnotation: "usage", names.CPURatioAnnotation: "4", names.MemoryRatioAnnotation: "1.5"}
			if tt.record != "" {
				ann[names.UsageTargetAnnotation] = tt.record
			}
			n := node(ann)
			n.Heartbeat = tt.heartbeat
			s := DefaultSettings()
			s.TargetsConfirmedAt = tt.confirmed
			got := Compute(Input{Node: n, Writer: "system:node:worker-1", Now: now}, s)
			if diff := cmp.Diff(tt.wantCPU, values(got)["alloc/cpu"]); diff != "" {
				t.Errorf("allocatable cpu (-want +got):\n%s", diff)
			}
			if got.Fallback != (tt.wantFallback != "") {
				t.Errorf("Fallback = %v, want %v (%q)", got.Fallback, tt.wantFallback != "", got.Warnings)
			}
			if tt.wantFallback != "" {
				checkWarnings(t, got.Warnings, []string{tt.wantFallback})
			}
			checkCapacityMoved(t, n, got)
		})
	}
}

func TestUsageTargetRecord(t *testing.T) {
	for _, s := range []string{"cpu=0m,memory=0", "cpu=-5m,memory=12", "cpu=99999999999999999m,memory=-99999999999999999"} {
		got, err := ParseUsageTarget(s)
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if got.String() != s {
			t.Errorf("%q reads back as %q", s, got.String())
		}
	}
	for _, s := range []string{"", "cpu=1,memory=0", "cpu=1m", "cpu=1m,memory=1Gi", "cpu=100000000000000000m,memory=0", " cpu=1m,memory=0", "cpu=+1m,memory=0"} {
		if _, err := ParseUsageTarget(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	for s, ok := range map[string]bool{"1764633600": true, "": false, "-1": false, "1.5": false, "1234567890123": false} {
		if _, got := ParseConfirmedAt(map[string]string{KeyUsageTargetsConfirmedAt: s}); got != ok {
			t.Errorf("confirmedAt %q: ok %v, want %v", s, got, ok)
		}
	}
}
