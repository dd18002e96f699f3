package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// TestComputeIssueNumbers: the amounts that once stored a negative capacity or cpu 0 leave their
// resource as it arrived, with a warning, whichever way the base is found (the kubelet's report,
// or the raw record under our own output) and under both policies; the other resource is still
// computed, and every invariant holds.
func TestComputeIssueNumbers(t *testing.T) {
	s := DefaultSettings()
	s.TargetsConfirmedAt = now.Add(-time.Minute)
	tests := []struct {
		name            string
		alloc, capacity corev1.ResourceList
		// record is the same node in the records' spelling, for the raw-record base; "" when
		// the records cannot spell it (then the kubelet path alone is tested).
		record   string
		kept     corev1.ResourceName
		wantWarn string
	}{
		{name: "cpu capacity 8e15 cores, allocatable 4e15",
			alloc: list("cpu", "4e15", "memory", "1Gi"), capacity: list("cpu", "8e15", "memory", "1Gi"),
			record: `{"allocatable":{"cpu":"4000000000000000","memory":"1Gi"},"capacity":{"cpu":"8000000000000000","memory":"1Gi"}}`,
			kept:   corev1.ResourceCPU, wantWarn: "is above the largest amount overcommit changes (36028797018963968m); leaving cpu unchanged"},
		{name: "cpu allocatable 4 with capacity 8e15",
			alloc: list("cpu", "4", "memory", "1Gi"), capacity: list("cpu", "8e15", "memory", "1Gi"),
			record: `{"allocatable":{"cpu":"4","memory":"1Gi"},"capacity":{"cpu":"8000000000000000","memory":"1Gi"}}`,
			kept:   corev1.ResourceCPU, wantWarn: "is above the largest amount overcommit changes (36028797018963968m); leaving cpu unchanged"},
		{name: "memory 6Ei of 7Ei",
			alloc: list("cpu", "1", "memory", "6Ei"), capacity: list("cpu", "1", "memory", "7Ei"),
			record: `{"allocatable":{"cpu":"1","memory":"6Ei"},"capacity":{"cpu":"1","memory":"7Ei"}}`,
			kept:   corev1.ResourceMemory, wantWarn: "is above the largest amount overcommit changes (32Pi); leaving memory unchanged"},
		{name: "cpu 10P",
			alloc: list("cpu", "10P", "memory", "1Gi"), capacity: list("cpu", "10P", "memory", "1Gi"),
			record: `{"allocatable":{"cpu":"10P","memory":"1Gi"},"capacity":{"cpu":"10P","memory":"1Gi"}}`,
			kept:   corev1.ResourceCPU, wantWarn: "is above the largest amount overcommit changes (36028797018963968m); leaving cpu unchanged"},
		{name: "cpu 9223372036854775807",
			alloc: list("cpu", "9223372036854775807", "memory", "1Gi"), capacity: list("cpu", "9223372036854775807", "memory", "1Gi"),
			record: `{"allocatable":{"cpu":"9223372036854775807","memory":"1Gi"},"capacity":{"cpu":"9223372036854775807","memory":"1Gi"}}`,
			kept:   corev1.ResourceCPU, wantWarn: "is above the largest amount overcommit changes (36028797018963968m); leaving cpu unchanged"},
		{name: "cpu 1e400",
			alloc: list("cpu", "1e400", "memory", "1Gi"), capacity: list("cpu", "1e400", "memory", "1Gi"),
			kept: corev1.ResourceCPU, wantWarn: "is above the largest amount overcommit changes (36028797018963968m); leaving cpu unchanged"},
	}
	for _, tt := range tests {
		for _, pol := range []string{names.PolicyStatic, names.PolicyUsage} {
			for _, base := range []string{"kubelet", "raw record"} {
				if base == "raw record" && tt.record == "" {
					continue
				}
				t.Run(tt.name+"/"+pol+"/"+base, func(t *testing.T) {
					ann := map[string]string{names.PolicyAnnotation: pol, names.CPURatioAnnotation: "4", names.MemoryRatioAnnotation: "1.5",
						names.UsageTargetAnnotation: "cpu=99999999999999999m,memory=99999999999999999"}
					n := Node{Name: "n", Labels: map[string]string{names.EnabledLabel: "true"}, Annotations: ann,
						Allocatable: tt.alloc, Capacity: tt.capacity, Heartbeat: now}
					in := Input{Node: n, Writer: names.KubeletUser("n"), Now: now}
					if base == "raw record" {
						// A heartbeat by a controller over a node whose stored values are those of
						// an earlier, sane computation: the raw record is the base.
						prev := Compute(Input{Node: Node{Name: "n", Annotations: ann, Allocatable: list("cpu", "2", "memory", "2Gi"),
							Capacity: list("cpu", "2", "memory", "2Gi")}, Writer: names.KubeletUser("n"), Now: now}, s)
						n.Annotations = map[string]string{names.RawAnnotation: tt.record, names.AppliedAnnotation: prev.AppliedRecord}
						for k, v := range ann {
							n.Annotations[k] = v
						}
						n.Allocatable, n.Capacity = prev.Allocatable, prev.Capacity
						in = Input{Node: n, Writer: "system:serviceaccount:kube-system:node-controller", Now: now}
					}
					got := Compute(in, s)
					if diff := cmp.Diff([]string(nil), invariants(in, s, got)); diff != "" {
						t.Errorf("invariants broken (-want +got):\n%s", diff)
					}
					for _, l := range []struct {
						name    string
						in, out corev1.ResourceList
					}{{"allocatable", in.Node.Allocatable, got.Allocatable}, {"capacity", in.Node.Capacity, got.Capacity}} {
						if q, o := l.in[tt.kept], l.out[tt.kept]; q.Cmp(o) != 0 {
							t.Errorf("%s/%s = %s, want it unchanged (%s)", l.name, tt.kept, o.String(), q.String())
						}
					}
					if !strings.Contains(strings.Join(got.Warnings, "\n"), tt.wantWarn) {
						t.Errorf("warnings %q lack %q", got.Warnings, tt.wantWarn)
					}
					// The other resource is still overcommitted: one absurd value costs only itself.
					other := corev1.ResourceMemory
					if tt.kept == corev1.ResourceMemory {
						other = corev1.ResourceCPU
					}
					if b, o := got.Raw.Allocatable[other], got.Allocatable[other]; o.Cmp(b) <= 0 {
						t.Errorf("%s = %s, want it above its base %s", other, o.String(), b.String())
					}
				})
			}
		}
	}
}

// TestComputeUnvalidatedSettings: Compute keeps its invariants even with settings nobody
// validated (the webhook and the plugin always validate them): a ratio it cannot apply leaves
// the resource unchanged, with a warning.
func TestComputeUnvalidatedSettings(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*Settings)
		wantWarn string
	}{
		{name: "negative default", mutate: func(s *Settings) { s.CPU.Default = -One },
			wantWarn: "cpu ratio -1 is outside [1, 100]; leaving cpu unchanged"},
		{name: "zero default", mutate: func(s *Settings) { s.CPU.Default = 0 },
			wantWarn: "cpu ratio 0 is outside [1, 100]; leaving cpu unchanged"},
		{name: "huge max and default", mutate: func(s *Settings) { s.CPU.Default, s.CPU.Max = 1<<62, 1<<62 },
			wantWarn: "cpu ratio 4611686018427.387904 is outside [1, 100]; leaving cpu unchanged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			tt.mutate(&s)
			in := Input{Node: node(nil), Writer: names.KubeletUser("worker-1"), Now: now}
			got := Compute(in, s)
			if q := got.Allocatable[corev1.ResourceCPU]; q.String() != "3900m" {
				t.Errorf("cpu = %s, want 3900m", q.String())
			}
			if q := got.Capacity[corev1.ResourceCPU]; q.String() != "4" {
				t.Errorf("capacity cpu = %s, want 4", q.String())
			}
			checkWarnings(t, got.Warnings, []string{tt.wantWarn})
		})
	}
}

// hostile are strings that would cost ParseQuantity (or a pattern over the whole of them) far
// more than a normal record: an exponent that makes apimachinery build a 10^2000000000 integer,
// and values far longer than any record overcommit writes.
var hostile = map[string]string{
	"exponent":    "1e-2000000000",
	"long digits": strings.Repeat("9", 1<<20),
	"long runes":  strings.Repeat("é", 1<<19),
}

// within runs f and fails t if it has not returned after d: on code that hands a hostile string
// to ParseQuantity the test fails instead of hanging for hours.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %s", d)
	}
	if took := time.Since(start); took > d {
		t.Errorf("took %s, want under %s", took, d)
	}
}

// TestParsersRefuseHostileStrings: every parser of a string from a node (records, ratios, the
// usage target) refuses a hostile one fast, with an error that says what is wrong, before any
// quantity or number parser sees it. The plugin reads nodes through the same functions.
func TestParsersRefuseHostileStrings(t *testing.T) {
	parsers := []struct {
		name  string
		parse func(string) error
		wrap  func(string) string // the hostile value where the parser expects a quantity or number
		want  string              // the error for the exponent; over-long ones are refused for their length
		long  string
	}{
		{name: "raw", parse: func(s string) error { _, err := ParseRaw(s); return err },
			wrap: func(v string) string { return `{"allocatable":{"cpu":"` + v + `"}}` },
			want: "not in the layout overcommit writes", long: "longer than 1024 characters"},
		{name: "applied", parse: func(s string) error { _, err := ParseApplied(s); return err },
			wrap: func(v string) string { return `{"policy":"static","allocatable":{"cpu":"` + v + `"}}` },
			want: "not in the layout overcommit writes", long: "longer than 1024 characters"},
		{name: "ratio", parse: func(s string) error { _, err := ParseRatio(s); return err },
			wrap: func(v string) string { return v }, want: "not a decimal number", long: "not a decimal number"},
		{name: "usage target", parse: func(s string) error { _, err := ParseUsageTarget(s); return err },
			wrap: func(v string) string { return "cpu=" + v + "m,memory=0" },
			want: `not in the layout "cpu=<millicores>m,memory=<bytes>[,<statistic>]"`, long: fmt.Sprintf("longer than %d characters", MaxUsageTargetLength)},
		{name: "requests", parse: func(s string) error { _, err := ParseRequests(s); return err },
			wrap: func(v string) string { return "cpu=" + v + "m,memory=0" },
			want: `not in the layout "cpu=<millicores>m,memory=<bytes>"`, long: fmt.Sprintf("longer than %d characters", MaxRequestsLength)},
		{name: "statistic", parse: func(s string) error { _, err := ParseStatistic(s); return err },
			wrap: func(v string) string { return "cpuUsage=p95:" + v + "m,memoryUsage=p100:1,window=60s,samples=5" },
			want: `not in the layout "cpuUsage=p<n>:<millicores>m,memoryUsage=p<n>:<bytes>,window=<seconds>s,samples=<n>"`,
			long: fmt.Sprintf("longer than %d characters", MaxStatisticLength)},
	}
	for _, p := range parsers {
		for kind, v := range hostile {
			t.Run(p.name+"/"+kind, func(t *testing.T) {
				want := p.want
				if kind != "exponent" {
					want = p.long
				}
				var err error
				within(t, 2*time.Second, func() { err = p.parse(p.wrap(v)) })
				if err == nil || err.Error() != want {
					t.Errorf("error %v, want %q", err, want)
				}
			})
		}
	}
}

// TestComputeWarnsOnHostileAnnotations: through Compute, each annotation with a hostile value is
// refused fast with a warning that names it, and the node keeps a safe result.
func TestComputeWarnsOnHostileAnnotations(t *testing.T) {
	s := DefaultSettings()
	s.TargetsConfirmedAt = now.Add(-time.Minute)
	ours := Compute(Input{Node: node(nil), Writer: names.KubeletUser("worker-1"), Now: now}, s)
	for _, tt := range fixtures.HostileAnnotations() {
		for kind, v := range hostile {
			t.Run(tt.Key+"/"+kind, func(t *testing.T) {
				// Our own output coming back from a controller's heartbeat, so the records are read.
				n := storedNode(t, node(nil), ours)
				if tt.Key == names.UsageTargetAnnotation {
					n.Annotations[names.PolicyAnnotation] = names.PolicyUsage
				}
				n.Heartbeat = now
				n.Annotations[tt.Key] = tt.Wrap(v)
				in := Input{Node: n, Writer: "system:serviceaccount:kube-system:node-controller", Now: now}
				var got Result
				within(t, 2*time.Second, func() { got = Compute(in, s) })
				if !strings.Contains(strings.Join(got.Warnings, "\n"), tt.Warn) {
					t.Errorf("warnings %.300q lack %q", got.Warnings, tt.Warn)
				}
				if q := got.Allocatable[corev1.ResourceCPU]; q.String() != tt.CPU {
					t.Errorf("cpu = %s, want %s", q.String(), tt.CPU)
				}
				// A warning repeats only the start of a long value.
				for _, w := range got.Warnings {
					if len(w) > 256 {
						t.Errorf("a warning of %d bytes: %.100q...", len(w), w)
					}
				}
				if diff := cmp.Diff([]string(nil), invariants(in, s, got)); diff != "" {
					t.Errorf("invariants broken (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestComputeNeverAddsAnEntry: records never add a resource to a list the write carries without
// it (found by FuzzCompute: our own output coming back without capacity cpu got it back from the
// raw record; inconsistent records gave a node allocatable cpu it had not reported).
func TestComputeNeverAddsAnEntry(t *testing.T) {
	tests := []struct {
		name            string
		ann             map[string]string
		alloc, capacity corev1.ResourceList
	}{
		{name: "capacity without cpu, raw record with it",
			ann:   map[string]string{names.RawAnnotation: `{"allocatable":{"cpu":"4"},"capacity":{"cpu":"4"}}`, names.AppliedAnnotation: `{"allocatable":{"cpu":"6000m"}}`},
			alloc: list("cpu", "6", "pods", "110"), capacity: list("memory", "1Gi", "pods", "110")},
		{name: "allocatable without cpu, raw record with it",
			ann:   map[string]string{names.RawAnnotation: `{"allocatable":{"cpu":"4","memory":"1Gi"}}`, names.AppliedAnnotation: `{"allocatable":{"memory":"1Gi"}}`},
			alloc: list("memory", "1Gi", "pods", "110"), capacity: list("memory", "1Gi", "pods", "110")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Node: Node{Name: "n", Annotations: tt.ann, Allocatable: tt.alloc, Capacity: tt.capacity}, Writer: "kubernetes-admin", Now: now}
			got := Compute(in, DefaultSettings())
			if diff := cmp.Diff(canonicalList(tt.capacity), canonicalList(got.Capacity)); diff != "" {
				t.Errorf("capacity (-want +got):\n%s", diff)
			}
			if _, ok := got.Allocatable[corev1.ResourceCPU]; ok != (tt.alloc.Cpu().Sign() > 0) {
				t.Errorf("allocatable %v: cpu added", canonicalList(got.Allocatable))
			}
			if diff := cmp.Diff([]string(nil), invariants(in, DefaultSettings(), got)); diff != "" {
				t.Errorf("invariants broken (-want +got):\n%s", diff)
			}
		})
	}
}
