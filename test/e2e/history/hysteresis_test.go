//go:build e2e

package history

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// The usage-policy node of the hysteresis scenario: 4 CPUs and 8Gi raw, cpu x2 and memory x1.5,
// two pods bound to it requesting 3 CPUs and 5Gi each (R above raw on purpose: the warm-up hold
// max(raw, min(R, ceiling)) is then neither raw nor the ceiling), each using 500m and 512Mi.
// The usage margin is the default 0.2: A' = clamp(A + R - 1.2 U, A, ceiling).
const (
	gi = int64(1) << 30

	// warm-up: held at R.
	warmCPU, warmMemory = 6000, 10 * gi
	// steady, U = 1000m and 1Gi: 4000 + 6000 - 1200 and 8Gi + 10Gi - 1.2Gi, both above the
	// ceilings 8000m and 12Gi. A few millicores of measuring noise cannot move a clamped value.
	steadyCPU, steadyMemory = 8000, 12 * gi
	// burst, U = 3000m: 4000 + 6000 - 3600; memory stays at its ceiling.
	burstCPU = 6400
	// usageCPU and burstUsageCPU are what the statistic should read, steady and in the burst.
	usageCPU, burstUsageCPU, usageMemory = 1000, 3000, 1 * gi
	// tolerance is how far metrics-server's cpu rate of kwok's exact usage may stray, in
	// millicores: the rate divides kwok's cumulative counter by the time between two scrapes,
	// as each side clocks them.
	tolerance = 60
)

// TestUsageHistory runs the pressure scenarios (seconds each), then the hysteresis scenarios of
// both modes side by side on nodes of their own (minutes of waiting, not of work: go test runs
// at most GOMAXPROCS parallel tests, two on CI), then restarts the webhook under the
// usage-policy nodes.
func TestUsageHistory(t *testing.T) {
	usageNodes := make([]string, len(modes))
	t.Run("modes", func(t *testing.T) {
		for _, mode := range modes {
			t.Run("pressure-"+mode, func(t *testing.T) { memoryPressure(t, mode) })
		}
		for i, mode := range modes {
			t.Run("hysteresis-"+mode, func(t *testing.T) {
				t.Parallel()
				usageNodes[i] = hysteresis(t, mode)
			})
		}
	})
	t.Run("warm-up-after-restart", func(t *testing.T) {
		for _, n := range usageNodes {
			if n == "" {
				t.Skip("needs the usage-policy nodes of the hysteresis scenarios, which did not complete")
			}
		}
		warmupAfterRestart(t, usageNodes)
	})
}

// hysteresis drives one usage-policy node through steady usage, a burst and quiet again, with
// every stored allocatable change recorded, and returns the node's name. It checks:
//   - warm-up: while the node's window spans less than --usage-min-window, the applied record's
//     statistic says warming-up and allocatable is held at max(raw, min(R, ceiling));
//   - the burst lowers allocatable promptly: within a minute (two metrics-server resolutions, a
//     webhook poll, a publishing round and a heartbeat come to about 30 s);
//   - no raise comes earlier than the flags allow (see checkChanges), and the raise does come,
//     within window + raise-after + a minute of the quiet phase's start;
//   - the stored allocatable changes at most maxChanges times over the whole run;
//   - the applied record names the statistic each stored value came from.
func hysteresis(t *testing.T, mode string) string {
	ctx := context.Background()
	cs := env.Client()
	name := "hysteresis-" + mode
	rec := record(t, name)
	node := cluster.KwokNode(name, "4", "8Gi")
	node.Labels[names.EnabledLabel] = names.EnabledValue
	node.Labels[modeLabel] = mode
	node.Annotations[names.PolicyAnnotation] = names.PolicyUsage
	node.Annotations[names.CPURatioAnnotation] = "2"
	node.Annotations[names.MemoryRatioAnnotation] = "1.5"
	node.Spec.Taints = []corev1.Taint{ownerTaint(name)}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bursty := name + "-bursty"
	for _, pod := range []string{name + "-steady", bursty} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: "default",
				Annotations: map[string]string{cluster.KwokUsageCPUAnnotation: "500m", cluster.KwokUsageMemoryAnnotation: "512Mi"}},
			Spec: corev1.PodSpec{
				NodeName:    name,
				Tolerations: []corev1.Toleration{{Key: ownerTaint(name).Key, Operator: corev1.TolerationOpEqual, Value: name, Effect: corev1.TaintEffectNoSchedule}},
				Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3"), corev1.ResourceMemory: resource.MustParse("5Gi")}}}},
			},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Warm-up. The node's first NodeMetrics take two scrapes; its window then warms up for
	// minWindow while every write stores the hold.
	warm := rec.await(t, 2*time.Minute, "a warming-up statistic", func(s stored) error {
		if s.usage == nil || !s.usage.WarmingUp {
			return errors.New("no warming-up statistic in the applied record")
		}
		return nil
	})
	if warm.usage.Window >= minWindow || warm.usage.CPUPercentile != 95 || warm.usage.MemoryPercentile != 100 {
		t.Errorf("warming-up statistic %s: want a window below %s, cpu p95 and memory p100", warm.usage, minWindow)
	}
	if warm.cpu != warmCPU || warm.memory != warmMemory {
		t.Errorf("warming up, stored %s; want the pods' requests, cpu %dm and memory %d", warm, warmCPU, warmMemory)
	}
	steady := rec.await(t, minWindow+time.Minute, "the trusted statistic", func(s stored) error {
		if s.usage == nil || s.usage.WarmingUp {
			return errors.New("still warming up")
		}
		if s.cpu != steadyCPU || s.memory != steadyMemory {
			return fmt.Errorf("allocatable not yet cpu %dm, memory %d", steadyCPU, steadyMemory)
		}
		return nil
	})
	checkStatistic(t, "steady", steady, usageCPU)
	for _, s := range rec.history() {
		if s.usage != nil && s.usage.WarmingUp && (s.cpu != warmCPU || s.memory != warmMemory) {
			t.Errorf("warming up, stored %s; want the pods' requests, cpu %dm and memory %d", s, warmCPU, warmMemory)
		}
	}

	// Burst: the statistic rises with the first sample that shows it, and allocatable falls.
	burstAt := time.Now()
	setUsage(t, bursty, "2500m")
	lowered := rec.await(t, time.Minute, "allocatable lowered by the burst", func(s stored) error {
		if s.cpu >= steadyCPU {
			return errors.New("not lowered yet")
		}
		return nil
	})
	t.Logf("the burst lowered allocatable %s after it began", lowered.at.Sub(burstAt).Round(100*time.Millisecond))
	if d := lowered.cpu - burstCPU; d < -tolerance*6/5 || d > tolerance*6/5 || lowered.memory != steadyMemory {
		t.Errorf("in the burst, stored %s; want cpu %dm (within %dm), memory %d", lowered, burstCPU, tolerance*6/5, steadyMemory)
	}
	checkStatistic(t, "burst", lowered, burstUsageCPU)

	// Quiet: the burst's samples leave the window within about window + a resolution; the
	// statistic must then stay lower for raiseAfter before allocatable rises.
	quietAt := time.Now()
	setUsage(t, bursty, "500m")
	raised := rec.await(t, window+raiseAfter+time.Minute, "allocatable raised after the quiet", func(s stored) error {
		if s.cpu != steadyCPU || s.memory != steadyMemory {
			return errors.New("not raised yet")
		}
		return nil
	})
	t.Logf("allocatable raised %s after the quiet phase began (window %s, raise after %s)",
		raised.at.Sub(quietAt).Round(100*time.Millisecond), window, raiseAfter)
	checkStatistic(t, "after the raise", raised, usageCPU)

	checkChanges(t, rec.history(), burstAt, quietAt)
	return name
}

// maxChanges bounds the stored allocatable changes of one hysteresis run. The run itself makes
// five versions: the node as created (raw), the warm-up hold, the trusted statistic (at the
// ceilings), the burst's lowering and the one raise. Two more are allowed for the burst: while it
// lasts, a sample above the statistic in use lowers allocatable at once, and metrics-server's
// rate of the same kwok usage varies by a few millicores between scrapes. The burst lasts about
// two samples (until the lowering shows), so at most two such samples follow the first.
const maxChanges = 7

// rawSlack is how much earlier than the flags allow a change may be seen: the window counts
// whole seconds, and metrics-server may stamp a sample when it starts the scrape, before kwok
// answers (its request timeout is 5 s).
const rawSlack = 5 * time.Second

// checkChanges reads the whole run: no change before the burst but the warm-up's two,
// allocatable only lowered from the burst until one raise, and memory, which the burst does not
// touch, never moved after the warm-up.
//
// The raise must wait for two things. The burst's samples stay in the window for --usage-window
// after they are taken, and while any is there the statistic stays at the burst (the window
// holds at most 13 samples, 5 s apart, and below 20 the nearest-rank 95th percentile is the
// maximum). Then the statistic must stay lower for
// --usage-raise-after. So the raise comes no earlier than window + raiseAfter after the burst
// began, which is later than raiseAfter after the quiet phase began: without the window, the
// raise would come about a minute earlier; without hysteresis, 90 s earlier.
func checkChanges(t *testing.T, changes []stored, burstAt, quietAt time.Time) {
	t.Helper()
	if len(changes) > maxChanges {
		t.Errorf("%d stored allocatable changes, want at most %d", len(changes), maxChanges)
	}
	earliest := burstAt.Add(window + raiseAfter - rawSlack)
	var before, raises int
	for i, s := range changes {
		if i == 0 || s.at.Before(burstAt) {
			before++
			continue
		}
		if s.memory != steadyMemory {
			t.Errorf("memory moved in the burst or after it: %s", s)
		}
		if prev := changes[i-1]; s.cpu > prev.cpu {
			raises++
			if s.at.Before(earliest) || s.at.Before(quietAt.Add(raiseAfter-rawSlack)) {
				t.Errorf("raised %s after the burst began and %s after the quiet, earlier than --usage-window %s + --usage-raise-after %s after the burst: %s",
					s.at.Sub(burstAt).Round(100*time.Millisecond), s.at.Sub(quietAt).Round(100*time.Millisecond), window, raiseAfter, s)
			}
		}
	}
	if before != 3 {
		t.Errorf("%d versions before the burst, want 3: as created, the warm-up hold, the trusted statistic", before)
	}
	if raises != 1 {
		t.Errorf("%d raises after the burst, want 1", raises)
	}
}

// checkStatistic checks that the applied record names the statistic the stored allocatable came
// from: cpu p95 of about wantCPU, memory p100 of exactly the pods' 1Gi (kwok reports bytes).
func checkStatistic(t *testing.T, when string, s stored, wantCPU int64) {
	t.Helper()
	u := s.usage
	switch {
	case u == nil:
		t.Errorf("%s: no statistic in the applied record (%s)", when, s)
	case u.WarmingUp || u.CPUPercentile != 95 || u.MemoryPercentile != 100:
		t.Errorf("%s: statistic %s, want a trusted cpu p95 and memory p100", when, u)
	case u.CPU < wantCPU-tolerance || u.CPU > wantCPU+tolerance || u.Memory != usageMemory:
		t.Errorf("%s: statistic %s, want cpu %dm (within %dm) and memory %d", when, u, wantCPU, tolerance, usageMemory)
	}
}

// setUsage changes the cpu usage kwok reports for a pod of the default namespace.
func setUsage(t *testing.T, pod, cpu string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, cluster.KwokUsageCPUAnnotation, cpu)
	if _, err := env.Client().CoreV1().Pods("default").Patch(context.Background(), pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ownerTaint keeps the scheduler's pods (the pressure scenarios') off a node.
func ownerTaint(node string) corev1.Taint {
	return corev1.Taint{Key: "e2e.overcommit.dev/owner", Value: node, Effect: corev1.TaintEffectNoSchedule}
}

// warmupAfterRestart restarts the webhook: every usage window is in its memory, so each
// usage-policy node warms up again and is held at its pods' requests, in both modes, until its
// window spans --usage-min-window again.
func warmupAfterRestart(t *testing.T, nodes []string) {
	recs := make([]*recorder, len(nodes))
	for i, n := range nodes {
		recs[i] = record(t, n)
	}
	if err := env.StopWebhook(); err != nil {
		t.Fatal(err)
	}
	if err := env.StartWebhook(context.Background()); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	for _, rec := range recs {
		s := rec.await(t, time.Minute, "the warm-up hold after a restart", func(s stored) error {
			if s.usage == nil || !s.usage.WarmingUp {
				return errors.New("no warming-up statistic in the applied record")
			}
			if s.cpu != warmCPU || s.memory != warmMemory {
				return fmt.Errorf("warming up, but not held at cpu %dm, memory %d", warmCPU, warmMemory)
			}
			return nil
		})
		t.Logf("node %s warming up %s after the webhook was ready", rec.name, s.at.Sub(started).Round(100*time.Millisecond))
	}
	// Never below the requests meanwhile: the kubelet would reject running pods on its next start.
	for _, rec := range recs {
		for _, s := range rec.history() {
			if s.cpu < warmCPU || s.memory < warmMemory {
				t.Errorf("node %s: stored %s after the restart, below its pods' requests", rec.name, s)
			}
		}
	}
}
