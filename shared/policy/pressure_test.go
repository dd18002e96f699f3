package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// TestPressureGuard: under MemoryPressure memory is held at max(raw, min(computed, R)), and under
// PIDPressure cpu too, in both policies; after the condition clears the hold lasts
// PressureCooldown by the node's clock, but only for a node that was held (a new node's
// conditions also turned False recently).
func TestPressureGuard(t *testing.T) {
	s := DefaultSettings()
	s.Memory.Default = MustParseRatio("1.5")
	s.TargetsConfirmedAt = now.Add(-10 * time.Second)
	// Raw: cpu 3900m, memory 15Gi; static: cpu 5850m, memory 22.5Gi.
	heldMemory := `{"policy":"static","cpuRatio":"1.5","memoryRatio":"1.5","hold":"memory-pressure","allocatable":{"cpu":"5850m","memory":"16Gi"}}`
	notHeld := `{"policy":"static","cpuRatio":"1.5","memoryRatio":"1.5","allocatable":{"cpu":"5850m","memory":"23040Mi"}}`
	on := Condition{True: true, Since: now.Add(-time.Minute)}
	tests := []struct {
		name         string
		memory, pid  Condition
		applied      string
		requests     string // Input.Requests as "cpu,memory"; "" for nil
		record       string // names.RequestsAnnotation
		wantCPU      string
		wantMemory   string
		wantHold     string
		wantWarnings int
	}{
		{name: "no pressure", wantCPU: "5850m", wantMemory: "23040Mi"},
		{name: "memory pressure: held at requests", memory: on, requests: "5,16Gi", wantCPU: "5850m", wantMemory: "16Gi", wantHold: HoldMemory, wantWarnings: 1},
		{name: "memory pressure: requests below raw keep raw", memory: on, requests: "1,1Gi", wantCPU: "5850m", wantMemory: "15Gi", wantHold: HoldMemory, wantWarnings: 1},
		{name: "memory pressure: requests above the ratio keep the ratio", memory: on, requests: "1,64Gi", wantCPU: "5850m", wantMemory: "23040Mi", wantHold: HoldMemory},
		{name: "pid pressure holds cpu too", pid: on, requests: "5,16Gi", wantCPU: "5", wantMemory: "16Gi", wantHold: HoldPID, wantWarnings: 2},
		{name: "both", memory: on, pid: on, requests: "4,16Gi", wantCPU: "4", wantMemory: "16Gi", wantHold: HoldMemory + "," + HoldPID, wantWarnings: 2},
		{name: "requests unknown: raw", memory: on, wantCPU: "5850m", wantMemory: "15Gi", wantHold: HoldMemory, wantWarnings: 2},
		{name: "requests from the published record", memory: on, record: "cpu=5000m,memory=17179869184", wantCPU: "5850m", wantMemory: "16Gi", wantHold: HoldMemory, wantWarnings: 1},
		{name: "unreadable record: raw", memory: on, record: "cpu=5,memory=1", wantCPU: "5850m", wantMemory: "15Gi", wantHold: HoldMemory, wantWarnings: 2},
		{name: "cooling down after a hold", memory: Condition{Since: now.Add(-4 * time.Minute)}, applied: heldMemory, requests: "5,16Gi", wantCPU: "5850m", wantMemory: "16Gi", wantHold: HoldMemory, wantWarnings: 1},
		{name: "cool-down over", memory: Condition{Since: now.Add(-5 * time.Minute)}, applied: heldMemory, requests: "5,16Gi", wantCPU: "5850m", wantMemory: "23040Mi"},
		{name: "recently False but never held (a new node)", memory: Condition{Since: now.Add(-time.Minute)}, applied: notHeld, requests: "5,16Gi", wantCPU: "5850m", wantMemory: "23040Mi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ann := map[string]string{}
			if tt.applied != "" {
				ann[names.AppliedAnnotation] = tt.applied
				ann[names.RawAnnotation] = `{"allocatable":{"cpu":"3900m","memory":"15Gi"},"capacity":{"cpu":"4","memory":"16Gi"}}`
			}
			if tt.record != "" {
				ann[names.RequestsAnnotation] = tt.record
			}
			n := node(ann)
			n.Heartbeat, n.MemoryPressure, n.PIDPressure = now, tt.memory, tt.pid
			in := Input{Node: n, Writer: "system:node:worker-1", Now: now}
			if tt.requests != "" {
				var cpu, mem string
				for i, c := range tt.requests {
					if c == ',' {
						cpu, mem = tt.requests[:i], tt.requests[i+1:]
					}
				}
				in.Requests = list("cpu", cpu, "memory", mem)
			}
			got := Compute(in, s)
			v := values(got)
			if diff := cmp.Diff([]string{tt.wantCPU, tt.wantMemory}, []string{v["alloc/cpu"], v["alloc/memory"]}); diff != "" {
				t.Errorf("allocatable cpu, memory (-want +got):\n%s", diff)
			}
			a, err := ParseApplied(got.AppliedRecord)
			if err != nil || a.Hold != tt.wantHold || got.Applied.Hold != tt.wantHold {
				t.Errorf("hold %q (record %q, %v), want %q", got.Applied.Hold, got.AppliedRecord, err, tt.wantHold)
			}
			if len(got.Warnings) != tt.wantWarnings {
				t.Errorf("warnings %q, want %d", got.Warnings, tt.wantWarnings)
			}
			checkCapacityMoved(t, n, got)
		})
	}
}

// TestPressureCooldownSequence follows one node through pressure and back by its own writes:
// held while True, held for the cool-down after it clears, then back to the ratio.
func TestPressureCooldownSequence(t *testing.T) {
	s := DefaultSettings()
	s.Memory.Default = MustParseRatio("1.5")
	n := node(map[string]string{})
	req := list("cpu", "1", "memory", "16Gi")
	clock := now
	step := func(mem Condition) string {
		n.Heartbeat = clock
		n.MemoryPressure = mem
		res := Compute(Input{Node: n, Writer: "system:node:worker-1", Now: clock, Requests: req, Update: true, OldAllocatable: n.Allocatable}, s)
		n = storedNode(t, n, res)
		return values(res)["alloc/memory"]
	}
	if got := step(Condition{Since: clock.Add(-time.Hour)}); got != "23040Mi" {
		t.Fatalf("before pressure: %s", got)
	}
	clock = clock.Add(time.Minute)
	cleared := clock.Add(time.Minute)
	for i, want := range []struct {
		at   time.Time
		cond Condition
		mem  string
	}{
		{clock, Condition{True: true, Since: clock}, "16Gi"},
		{clock.Add(30 * time.Second), Condition{True: true, Since: clock}, "16Gi"},
		{cleared, Condition{Since: cleared}, "16Gi"},
		{cleared.Add(4 * time.Minute), Condition{Since: cleared}, "16Gi"},
		{cleared.Add(5 * time.Minute), Condition{Since: cleared}, "23040Mi"},
		{cleared.Add(6 * time.Minute), Condition{Since: cleared}, "23040Mi"},
	} {
		clock = want.at
		if got := step(want.cond); got != want.mem {
			t.Errorf("step %d at +%s: memory %s, want %s", i, want.at.Sub(now), got, want.mem)
		}
	}
}

func TestConditions(t *testing.T) {
	at := metav1.NewTime(now.Add(-90*time.Second + 300*time.Millisecond))
	mem, pid := Conditions([]corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue, LastTransitionTime: at},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionUnknown},
	})
	if diff := cmp.Diff([]Condition{{True: true, Since: now.Add(-90 * time.Second)}, {}}, []Condition{mem, pid}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRequestsRecord(t *testing.T) {
	got := FormatRequests(list("cpu", "2500m", "memory", "1Gi"))
	if want := "cpu=2500m,memory=1073741824"; got != want {
		t.Fatalf("FormatRequests = %q, want %q", got, want)
	}
	r, err := ParseRequests(got)
	if err != nil || r["cpu"] != 2500 || r["memory"] != 1<<30 {
		t.Errorf("ParseRequests = %v, %v", r, err)
	}
	if got := FormatRequests(nil); got != "cpu=0m,memory=0" {
		t.Errorf("FormatRequests(nil) = %q", got)
	}
	for _, s := range []string{"cpu=-1m,memory=0", "cpu=1,memory=0", "cpu=1m,memory=1Gi", "cpu=1m"} {
		if _, err := ParseRequests(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
