package policy

import (
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
