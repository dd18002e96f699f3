//go:build e2e

package policy

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// TestPolicyHostileInput sends the hardening issue's numbers, hostile annotation values (the
// published usage target and requests, and holds in the applied record, included) and a flood of
// pressure conditions through the MutatingAdmissionPolicy: the CEL must store what policy.Compute
// says (which leaves an amount it cannot hold exactly unchanged, and refuses a hostile string
// before any quantity or int conversion), never fail evaluation (that would store the write
// without the policy), and answer fast.
func TestPolicyHostileInput(t *testing.T) {
	l := func(cpu, memory string) corev1.ResourceList {
		out := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
		if cpu != "" {
			out[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if memory != "" {
			out[corev1.ResourceMemory] = resource.MustParse(memory)
		}
		return out
	}
	ratios := map[string]string{names.CPURatioAnnotation: "2", names.MemoryRatioAnnotation: "2"}
	numbers := []struct {
		name       string
		alloc, cap corev1.ResourceList
	}{
		{"cpu 4e15 of 8e15", l("4e15", "1Gi"), l("8e15", "1Gi")},
		{"memory 6Ei of 7Ei", l("1", "6Ei"), l("1", "7Ei")},
		{"cpu 10P", l("10P", "1Gi"), l("10P", "1Gi")},
		{"cpu 9223372036854775807", l("9223372036854775807", "1Gi"), l("9223372036854775807", "1Gi")},
		{"cpu 1e400", l("1e400", "1Gi"), l("1e400", "1Gi")},
		{"the largest amount", l("36028797018963968m", "36028797018963968"), l("36028797018963968m", "36028797018963968")},
	}
	type tcase struct {
		name string
		c    dcase
	}
	var cases []tcase
	for i, n := range numbers {
		for _, kubelet := range []bool{true, false} {
			ann := map[string]string{}
			for k, v := range ratios {
				ann[k] = v
			}
			cases = append(cases, tcase{n.name, dcase{node: "hostile-" + string(rune('a'+i)), kubelet: kubelet, annotations: ann,
				stored: l("2", "2Gi"), storedCap: l("2", "2Gi"), alloc: n.alloc, cap: n.cap}})
		}
	}
	long := strings.Repeat("9", 100_000)
	// The annotation cases' node cleared MemoryPressure a minute ago and its applied record says
	// it was held: the guard reads the requests record, and the applied record's hold.
	clock := confirmedAt.Add(time.Second)
	cooling := []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(clock), LastTransitionTime: metav1.NewTime(confirmedAt)},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(clock), LastTransitionTime: metav1.NewTime(clock.Add(-time.Minute))},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionUnknown, LastHeartbeatTime: metav1.NewTime(clock), LastTransitionTime: metav1.NewTime(clock.Add(-time.Minute))},
	}
	stat := "cpuUsage=p95:1500m,memoryUsage=p100:1073741824,window=600s,samples=40"
	for _, a := range []struct{ key, value string }{
		{names.RawAnnotation, `{"allocatable":{"cpu":"1e-2000000000"}}`},
		{names.RawAnnotation, `{"allocatable":{"cpu":"` + long + `"}}`},
		{names.AppliedAnnotation, `{"allocatable":{"cpu":"1e-2000000000"}}`},
		{names.AppliedAnnotation, `{"allocatable":{"cpu":"` + long + `"}}`},
		{names.CPURatioAnnotation, "1e-2000000000"},
		{names.CPURatioAnnotation, long},
		{names.MemoryRatioAnnotation, long},
		{names.UsageTargetAnnotation, "cpu=1e-2000000000m,memory=0"},
		{names.UsageTargetAnnotation, "cpu=" + long + "m,memory=0"},
		{names.PolicyAnnotation, long},
		{names.UsageTargetAnnotation, "cpu=1m,memory=0," + long},
		{names.UsageTargetAnnotation, "cpu=1m,memory=0,cpuUsage=p95:" + long + "m,memoryUsage=p100:0,window=600s,samples=40"},
		{names.UsageTargetAnnotation, "cpu=1m,memory=0," + stat + strings.Repeat(",warming-up", 10_000)},
		{names.UsageTargetAnnotation, "cpu=1m,memory=0," + strings.Repeat(stat+",", 1_000) + stat},
		{names.UsageTargetAnnotation, "cpu=1m,memory=0," + strings.ReplaceAll(stat, "p95", "p1e-2000000000")},
		{names.RequestsAnnotation, "cpu=1e-2000000000m,memory=0"},
		{names.RequestsAnnotation, "cpu=" + long + "m,memory=0"},
		{names.RequestsAnnotation, "cpu=1000m,memory=" + long},
		{names.RequestsAnnotation, "cpu=99999999999999999m,memory=99999999999999999"},
		{names.AppliedAnnotation, `{"hold":"` + strings.Repeat("memory-pressure,", 10_000) + `"}`},
		{names.AppliedAnnotation, long + `"hold":"memory-pressure"`},
		{names.AppliedAnnotation, `{"hold":"` + strings.Repeat("-", 100_000) + `memory-pressure"}`},
	} {
		ann := map[string]string{names.PolicyAnnotation: names.PolicyUsage, names.RequestsAnnotation: "cpu=6000m,memory=1073741824", a.key: a.value}
		if a.key != names.RawAnnotation && a.key != names.AppliedAnnotation {
			ann[names.RawAnnotation] = `{"allocatable":{"cpu":"4","memory":"1Gi"}}`
			ann[names.AppliedAnnotation] = `{"policy":"static","cpuRatio":"2","memoryRatio":"1","hold":"memory-pressure,pid-pressure","allocatable":{"cpu":"8","memory":"1Gi"}}`
		}
		cases = append(cases, tcase{a.key + " " + a.value[:min(len(a.value), 24)], dcase{node: "hostile-ann", annotations: ann,
			stored: l("8", "1Gi"), storedCap: l("8", "1Gi"), alloc: l("8", "1Gi"), cap: l("8", "1Gi"), conditions: cooling}})
	}
	// A status write may carry any number of conditions: the last of a type counts.
	var many []corev1.NodeCondition
	for i := range 1_000 {
		status := corev1.ConditionFalse
		if i == 999 {
			status = corev1.ConditionTrue
		}
		many = append(many, corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: status,
			LastHeartbeatTime: metav1.NewTime(clock), LastTransitionTime: metav1.NewTime(clock.Add(-time.Hour))})
	}
	for _, kubelet := range []bool{true, false} {
		ann := map[string]string{names.RequestsAnnotation: "cpu=6000m,memory=1073741824"}
		cases = append(cases, tcase{"1,000 MemoryPressure conditions", dcase{node: "hostile-conditions", kubelet: kubelet, annotations: ann,
			stored: l("8", "1Gi"), storedCap: l("8", "1Gi"), alloc: l("4", "1Gi"), cap: l("4", "1Gi"), conditions: many}})
	}
	admin := env.Client()
	for _, tc := range cases {
		c := tc.c
		kubelet := impersonate(t, names.KubeletUser(c.node))
		start := time.Now()
		_, diff, err := c.run(admin, kubelet)
		for try := 0; try < 20 && racedController(err); try++ {
			_, diff, err = c.run(admin, kubelet)
		}
		took := time.Since(start)
		if err != nil || diff != "" {
			t.Errorf("%s (%s): %v%s", tc.name, c.writerKind(), err, diff)
		}
		// The case stores its starting state in three writes before the dry run.
		if took > 10*time.Second {
			t.Errorf("%s (%s): took %s", tc.name, c.writerKind(), took)
		}
	}
}
