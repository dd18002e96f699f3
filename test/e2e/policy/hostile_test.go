//go:build e2e

package policy

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// TestPolicyHostileInput sends the hardening issue's numbers and hostile annotation values
// through the MutatingAdmissionPolicy: the CEL must store what policy.Compute says (which leaves
// an amount it cannot hold exactly unchanged, and refuses a hostile string before any quantity
// or int conversion), never fail evaluation (that would store the write without the policy), and
// answer fast.
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
	} {
		ann := map[string]string{names.PolicyAnnotation: names.PolicyUsage, a.key: a.value}
		if a.key != names.RawAnnotation && a.key != names.AppliedAnnotation {
			ann[names.RawAnnotation] = `{"allocatable":{"cpu":"4","memory":"1Gi"}}`
			ann[names.AppliedAnnotation] = `{"policy":"static","cpuRatio":"2","memoryRatio":"1","allocatable":{"cpu":"8","memory":"1Gi"}}`
		}
		cases = append(cases, tcase{a.key + " " + a.value[:min(len(a.value), 24)], dcase{node: "hostile-ann", annotations: ann,
			stored: l("8", "1Gi"), storedCap: l("8", "1Gi"), alloc: l("8", "1Gi"), cap: l("8", "1Gi")}})
	}
	admin := env.Client()
	for _, tc := range cases {
		c := tc.c
		kubelet := impersonate(t, names.KubeletUser(c.node))
		start := time.Now()
		diff, err := c.run(admin, kubelet)
		for try := 0; try < 20 && racedController(err); try++ {
			diff, err = c.run(admin, kubelet)
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
