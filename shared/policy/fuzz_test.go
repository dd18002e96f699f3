package policy

import (
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// fuzzQuantityRE bounds the quantities the fuzzer may build: the apiserver hands the policy
// decoded quantities, never text, and ParseQuantity itself is not under test (a long exponent
// would only measure apimachinery).
var fuzzQuantityRE = regexp.MustCompile(`^[+-]?[0-9]{0,20}([.][0-9]{0,12})?([eE][+-]?[0-9]{1,3}|[numkMGTPE]|[KMGTPE]i)?$`)

func fuzzQuantity(s string) (resource.Quantity, bool) {
	if !fuzzQuantityRE.MatchString(s) {
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return resource.Quantity{}, false
	}
	// As the apiserver hands it over: canonical, without the spelling it was sent in.
	q.Add(resource.Quantity{})
	return q, true
}

// fuzzRatio maps any integer into [lo, hi].
func fuzzRatio(v uint64, lo, hi Ratio) Ratio {
	return lo + Ratio(v%uint64(hi-lo+1))
}

// FuzzCompute feeds Compute random nodes (quantities, records, ratios, usage targets, writers)
// and random valid settings, and checks the promises it makes for every input (invariants):
// no panic, only cpu and memory change, a changed allocatable stays within [base, max x base],
// capacity moves with it, and the same input gives the same result.
func FuzzCompute(f *testing.F) {
	ours := Compute(Input{Node: node(map[string]string{names.CPURatioAnnotation: "2"}), Writer: "system:node:worker-1"}, DefaultSettings())
	type seed struct {
		allocCPU, allocMem, capCPU, capMem string
		raw, applied                       string
		cpuRatio, memRatio, target, policy string
		writer                             uint8 // 0 the node's kubelet, 1 another writer, 2 another writer with our output coming back
		update                             bool
		// A live usage sample (webhook mode) when any is set; else the published target.
		reqCPU, usedCPU, reqMem, usedMem string
	}
	seeds := []seed{
		{allocCPU: "3900m", allocMem: "15Gi", capCPU: "4", capMem: "16Gi", cpuRatio: "2"},
		{allocCPU: "7800m", allocMem: "15Gi", capCPU: "7900m", capMem: "16Gi", raw: ours.RawRecord, applied: ours.AppliedRecord, writer: 2},
		{allocCPU: "7800m", allocMem: "15Gi", capCPU: "7900m", capMem: "16Gi", raw: ours.RawRecord, applied: ours.AppliedRecord, writer: 0, update: true},
		// The numbers.
		{allocCPU: "4e15", allocMem: "1Gi", capCPU: "8e15", capMem: "1Gi", cpuRatio: "2", memRatio: "1.5"},
		{allocCPU: "1", allocMem: "6Ei", capCPU: "1", capMem: "7Ei", cpuRatio: "4", memRatio: "1.5"},
		{allocCPU: "10P", capCPU: "10P", cpuRatio: "3"},
		{allocCPU: "9223372036854775807", capCPU: "9223372036854775807", cpuRatio: "3"},
		{allocCPU: "1e400", capCPU: "1e400", cpuRatio: "3"},
		{allocCPU: "36028797018963968m", allocMem: "36028797018963968", capCPU: "36028797018963968m", capMem: "36028797018963968", cpuRatio: "4", memRatio: "1.5"},
		{allocCPU: "-1", allocMem: "-1Gi", capCPU: "1500u", capMem: "1500m"},
		// Hostile records and strings.
		{allocCPU: "4", allocMem: "1Gi", raw: `{"allocatable":{"cpu":"1e-2000000000"}}`, applied: `{"allocatable":{"cpu":"4","memory":"1Gi"}}`, writer: 1},
		{allocCPU: "4", raw: `{"allocatable":{"cpu":"9999999999999999999E"},"capacity":{"cpu":"1"}}`, applied: `{"allocatable":{"cpu":"4"}}`, writer: 1},
		{allocCPU: "4", raw: `{"allocatable":{"cpu":"0"}}`, applied: `{"allocatable":{"cpu":"4"}}`, writer: 1},
		{allocCPU: "4", allocMem: "8Gi", cpuRatio: "1e-2000000000", memRatio: "999999.999999999999", policy: "usage",
			target: "cpu=99999999999999999m,memory=-99999999999999999"},
		{allocCPU: "4", allocMem: "8Gi", policy: "usage", target: "cpu=1e-2000000000m,memory=0"},
		{allocCPU: "4", allocMem: "8Gi", capCPU: "4", capMem: "8Gi", policy: "usage", cpuRatio: "4", reqCPU: "10P", usedCPU: "1n", reqMem: "7Ei", usedMem: "-1"},
		{allocCPU: "4", allocMem: "8Gi", capCPU: "4", capMem: "8Gi", policy: "usage", cpuRatio: "4", reqCPU: "8", usedCPU: "1e400", reqMem: "8Gi", usedMem: "1Gi"},
	}
	for _, s := range seeds {
		f.Add(s.allocCPU, s.allocMem, s.capCPU, s.capMem, s.raw, s.applied, s.cpuRatio, s.memRatio, s.target, s.policy,
			s.writer, s.update, uint64(3_000_000), uint64(0), uint64(500_000), uint64(200_000), uint64(180),
			s.reqCPU, s.usedCPU, s.reqMem, s.usedMem)
	}
	f.Fuzz(func(t *testing.T, allocCPU, allocMem, capCPU, capMem, raw, applied, cpuRatio, memRatio, target, pol string,
		writer uint8, update bool, cpuMax, memMax, cpuDefault, margin, maxAge uint64, reqCPU, usedCPU, reqMem, usedMem string) {
		alloc := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"), "example.com/gpu": resource.MustParse("2")}
		capacity := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"), "example.com/gpu": resource.MustParse("2")}
		for _, e := range []struct {
			l    corev1.ResourceList
			name corev1.ResourceName
			s    string
		}{{alloc, corev1.ResourceCPU, allocCPU}, {alloc, corev1.ResourceMemory, allocMem}, {capacity, corev1.ResourceCPU, capCPU}, {capacity, corev1.ResourceMemory, capMem}} {
			if q, ok := fuzzQuantity(e.s); ok {
				e.l[e.name] = q
			}
		}
		ann := map[string]string{}
		for k, v := range map[string]string{names.RawAnnotation: raw, names.AppliedAnnotation: applied, names.CPURatioAnnotation: cpuRatio,
			names.MemoryRatioAnnotation: memRatio, names.UsageTargetAnnotation: target, names.PolicyAnnotation: pol} {
			if v != "" {
				ann[k] = v
			}
		}
		s := Settings{MaxMetricsAge: time.Duration(1+maxAge%99999) * time.Second, UsageMargin: fuzzRatio(margin, 0, MaxRatio)}
		s.CPU.Max = fuzzRatio(cpuMax, One, MaxRatio)
		s.CPU.Default = fuzzRatio(cpuDefault, One, s.CPU.Max)
		s.Memory.Max = fuzzRatio(memMax, One, MaxRatio)
		s.Memory.Default = fuzzRatio(cpuDefault>>32, One, s.Memory.Max)
		s.TargetsConfirmedAt = now.Add(-time.Minute)
		if err := s.Validate(); err != nil {
			t.Fatalf("the harness built invalid settings: %v", err)
		}
		in := Input{Node: Node{Name: "worker-1", Labels: map[string]string{names.EnabledLabel: "true"}, Annotations: ann,
			Allocatable: alloc, Capacity: capacity, Heartbeat: now}, Now: now}
		switch writer % 3 {
		case 0:
			in.Writer = names.KubeletUser("worker-1")
		case 2:
			// Our own output coming back: the incoming allocatable is what the applied record says.
			if a, err := ParseApplied(applied); err == nil {
				for _, name := range Resources {
					if q, ok := a.Allocatable[name]; ok {
						alloc[name] = q
					}
				}
			}
			fallthrough
		default:
			in.Writer = "kubernetes-admin"
		}
		if update {
			in.Update, in.OldAllocatable = true, overlay(alloc, nil)
		}
		if reqCPU+usedCPU+reqMem+usedMem != "" {
			u := &UsageSample{Requests: corev1.ResourceList{}, Usage: corev1.ResourceList{}, Timestamp: now.Add(-time.Second)}
			for _, e := range []struct {
				l    corev1.ResourceList
				name corev1.ResourceName
				s    string
			}{{u.Requests, corev1.ResourceCPU, reqCPU}, {u.Usage, corev1.ResourceCPU, usedCPU}, {u.Requests, corev1.ResourceMemory, reqMem}, {u.Usage, corev1.ResourceMemory, usedMem}} {
				if q, ok := fuzzQuantity(e.s); ok {
					e.l[e.name] = q
				}
			}
			in.Usage = u
		}
		before := cloneNode(in.Node)

		res := Compute(in, s)
		for _, problem := range invariants(in, s, res) {
			t.Error(problem)
		}
		if !sameSnapshot(snapshot(before.Allocatable, before.Capacity), snapshot(in.Node.Allocatable, in.Node.Capacity)) {
			t.Error("Compute changed its input")
		}
		again := Compute(Input{Node: cloneNode(before), Writer: in.Writer, Update: in.Update, OldAllocatable: in.OldAllocatable, Usage: in.Usage, Now: now}, s)
		if a, b := fingerprint(res), fingerprint(again); a != b {
			t.Errorf("not deterministic:\n%s\n---\n%s", a, b)
		}
		if t.Failed() {
			t.Logf("input: alloc %v cap %v annotations %q writer %q update %v settings %+v", alloc, capacity, ann, in.Writer, in.Update, s)
		}
	})
}
