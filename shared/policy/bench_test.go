package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// BenchmarkCompute is the policy alone, as the node webhook calls it on every review: a first
// write (no annotations yet) and a kubelet re-send of raw values onto an overcommitted node, for
// both policies.
func BenchmarkCompute(b *testing.B) {
	fresh := now.Add(-30 * time.Second)
	usage := &UsageSample{Requests: list("cpu", "8", "memory", "8Gi"), Usage: list("cpu", "2", "memory", "4Gi"), Timestamp: fresh}
	settings := DefaultSettings()
	for _, bc := range []struct {
		name string
		ann  map[string]string
	}{
		{"static", map[string]string{names.CPURatioAnnotation: "2"}},
		{"usage", map[string]string{names.PolicyAnnotation: names.PolicyUsage}},
	} {
		first := Input{Node: node(bc.ann), Usage: usage, Now: now}
		stored := storedNode(b, first.Node, Compute(first, settings))
		stored.Allocatable, stored.Capacity = first.Node.Allocatable, first.Node.Capacity // the kubelet's raw values
		resend := Input{Node: stored, Usage: usage, Now: now}
		for name, in := range map[string]Input{"first": first, "resend": resend} {
			b.Run(bc.name+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if res := Compute(in, settings); len(res.Allocatable) == 0 {
						b.Fatal("no result")
					}
				}
			})
		}
	}
}

// BenchmarkParseRecords compares a record as overcommit writes it with hostile ones: an exponent
// that ParseQuantity would turn into a 10^2000000000 integer, a record just over the length
// limit, and one of 1 MiB. Each is refused before any quantity parser sees it, so a hostile
// record costs about what a normal one does.
func BenchmarkParseRecords(b *testing.B) {
	ours := Compute(Input{Node: node(map[string]string{names.CPURatioAnnotation: "2"}), Writer: "system:node:worker-1", Now: now}, DefaultSettings())
	for _, bc := range []struct {
		name         string
		raw, applied string
		wantErr      bool
	}{
		{name: "normal", raw: ours.RawRecord, applied: ours.AppliedRecord},
		{name: "exponent", raw: `{"allocatable":{"cpu":"1e-2000000000"}}`,
			applied: `{"policy":"static","cpuRatio":"2","memoryRatio":"1","allocatable":{"cpu":"1e-2000000000","memory":"15Gi"}}`, wantErr: true},
		{name: "just too long", raw: `{"allocatable":{"cpu":"` + strings.Repeat("1", MaxRecordLength) + `"}}`,
			applied: `{"allocatable":{"cpu":"` + strings.Repeat("1", MaxRecordLength) + `"}}`, wantErr: true},
		{name: "1MiB", raw: `{"allocatable":{"cpu":"` + strings.Repeat("1", 1<<20) + `"}}`,
			applied: `{"allocatable":{"cpu":"` + strings.Repeat("1", 1<<20) + `"}}`, wantErr: true},
	} {
		b.Run("raw/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseRaw(bc.raw); (err != nil) != bc.wantErr {
					b.Fatal(err)
				}
			}
		})
		b.Run("applied/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseApplied(bc.applied); (err != nil) != bc.wantErr {
					b.Fatal(err)
				}
			}
		})
	}
}
