package history

import (
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// BenchmarkReplay replays a synthetic day of 1,000 nodes (trace_test.go) through policy.Compute
// with the usage policy (cpu ratio 2, memory ratio 1.5, the default margin of 20%), once per way
// of turning samples into U:
//   - instantaneous: the latest sample, as before the usage window;
//   - window: the percentile of the window (DefaultConfig), without hysteresis;
//   - window + hysteresis: DefaultConfig as the webhook runs it;
//   - the same with the cpu percentile at 99 and 100, for comparison.
//
// For each it reports the capacity gained (mean (A'-A)/A over all samples), how often usage
// went over the raw allocatable A while extra capacity was handed out, and the allocatable
// changes per node-hour. The exceedance model: the scheduler fills the room handed out with pods
// that use what they request, so at the next sample the node uses U_next + (A'-R)⁺; a sample
// counts when A' > A and that is above A, as a share of the samples with A' > A. A second
// figure keeps those pods for 10 minutes: usage at any of the next 40 samples plus the room.
//
//	go test -run '^$' -bench Replay -benchtime=1x -v ./shared/history/
func BenchmarkReplay(b *testing.B) {
	nodes := *replayNodes
	plain := DefaultConfig()
	plain.RaiseAfter, plain.CPUStep, plain.MemoryStep = 0, 0, 0
	p99, pmax := DefaultConfig(), DefaultConfig()
	p99.CPUPercentile, pmax.CPUPercentile = 99, 100
	modes := []replayMode{
		{name: "instantaneous (latest sample)"},
		{name: "window p95 cpu / max memory, no hysteresis", window: true, config: plain},
		{name: "window + hysteresis (defaults)", window: true, config: DefaultConfig()},
		{name: "window + hysteresis, cpu p99", window: true, config: p99},
		{name: "window + hysteresis, cpu max", window: true, config: pmax},
	}
	var totals []tally
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		totals = replay(b, nodes, modes)
		took = time.Since(start)
	}
	table := replayTable(modes, totals, nodes, took)
	if testing.Verbose() {
		fmt.Print(table)
	} else {
		b.Log("\n" + table)
	}
	for i, key := range []string{"inst", "win", "hyst"} {
		t := totals[i]
		b.ReportMetric(100*t.gain(0), key+"-cpu-gain-%")
		b.ReportMetric(100*t.gain(1), key+"-mem-gain-%")
		b.ReportMetric(100*t.exceeded(0), key+"-cpu-exceed-%")
		b.ReportMetric(100*t.exceeded(1), key+"-mem-exceed-%")
		b.ReportMetric(100*t.exceededAhead(0), key+"-cpu-exceed10m-%")
		b.ReportMetric(100*t.exceededAhead(1), key+"-mem-exceed10m-%")
		b.ReportMetric(t.perHour(0), key+"-cpu-changes/node-h")
		b.ReportMetric(t.perHour(1), key+"-mem-changes/node-h")
	}
}

var replayNodes = flag.Int("replay-nodes", 1000, "nodes in BenchmarkReplay's trace")

// replayMode is one way of turning a node's samples into the usage policy's input.
type replayMode struct {
	name   string
	window bool // the window's statistic (config) instead of the latest sample
	config Config
}

// tally sums one mode's figures over nodes; index 0 is cpu, 1 memory.
type tally struct {
	samples, hours float64
	gained         [2]float64 // sum of (A'-A)/A
	over, exceed   [2]int     // samples with A' > A (and a next sample); of those, over A next
	exceedAhead    [2]int     // of those, over A at any of the next aheadSamples samples
	changes, downs [2]int     // allocatable changes; those that lowered it
}

func (t tally) gain(r int) float64     { return t.gained[r] / t.samples }
func (t tally) exceeded(r int) float64 { return float64(t.exceed[r]) / float64(max(t.over[r], 1)) }
func (t tally) exceededAhead(r int) float64 {
	return float64(t.exceedAhead[r]) / float64(max(t.over[r], 1))
}
func (t tally) perHour(r int) float64 { return float64(t.changes[r]) / t.hours }

// changes is the changes per node-hour, and how many lowered and raised allocatable.
func (t tally) changesCell(r int) string {
	return fmt.Sprintf("%.1f (%.1f / %.1f)", t.perHour(r), float64(t.downs[r])/t.hours, float64(t.changes[r]-t.downs[r])/t.hours)
}

func (t *tally) add(o tally) {
	t.samples, t.hours = t.samples+o.samples, t.hours+o.hours
	for r := range 2 {
		t.gained[r] += o.gained[r]
		t.over[r] += o.over[r]
		t.exceed[r] += o.exceed[r]
		t.exceedAhead[r] += o.exceedAhead[r]
		t.changes[r] += o.changes[r]
		t.downs[r] += o.downs[r]
	}
}

// replay runs every mode over every node, on all cores, and sums per mode in node order (so
// that the floating-point sums do not depend on scheduling).
func replay(b *testing.B, nodes int, modes []replayMode) []tally {
	perNode := make([][]tally, nodes)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				n := makeTrace(i)
				ahead := [2][]int64{maxAhead(n.cpu, aheadSamples), maxAhead(n.mem, aheadSamples)}
				for _, m := range modes {
					t, err := replayNode(&n, ahead, m)
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
					perNode[i] = append(perNode[i], t)
				}
			}
		})
	}
	for i := range nodes {
		next <- i
	}
	close(next)
	wg.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
	totals := make([]tally, len(modes))
	for _, ts := range perNode {
		for m, t := range ts {
			totals[m].add(t)
		}
	}
	return totals
}

// aheadSamples is how long the pods placed in the room handed out stay for the second
// exceedance figure: 10 minutes. The first figure looks at the next sample only, which flatters
// a policy that takes the room back 15 s later; pods the scheduler placed do not leave then.
const aheadSamples = int(10 * time.Minute / tracePoll)

// maxAhead is, for every step k, the highest of u[k+1:k+1+w] (0 for the last step).
func maxAhead(u []int64, w int) []int64 {
	out := make([]int64, len(u))
	for k := range len(u) - 1 {
		out[k] = slices.Max(u[k+1 : min(k+1+w, len(u))])
	}
	return out
}

// replayNode computes node n's allocatable at every sample under mode m and tallies it; ahead
// is maxAhead of its cpu and memory.
func replayNode(n *traceNode, ahead [2][]int64, m replayMode) (tally, error) {
	node := policy.Node{
		Name:   n.name,
		Labels: map[string]string{names.EnabledLabel: names.EnabledValue},
		Annotations: map[string]string{names.PolicyAnnotation: names.PolicyUsage,
			names.CPURatioAnnotation: "2", names.MemoryRatioAnnotation: "1.5"},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: policy.Quantity(corev1.ResourceCPU, n.rawCPU),
			corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, n.rawMem)},
		Capacity: corev1.ResourceList{corev1.ResourceCPU: policy.Quantity(corev1.ResourceCPU, n.capCPU),
			corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, n.capMem)},
	}
	requests := corev1.ResourceList{corev1.ResourceCPU: policy.Quantity(corev1.ResourceCPU, n.reqCPU),
		corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, n.reqMem)}
	settings := policy.DefaultSettings()
	raw, req := [2]int64{n.rawCPU, n.rawMem}, [2]int64{n.reqCPU, n.reqMem}

	var h Node
	var t tally
	// Compute is pure, so an input like the previous one has the previous result: the window's
	// statistic stays put for minutes, and the replay skips those calls.
	type key struct {
		u       [2]int64
		warming bool
	}
	var last key
	var got, prev [2]int64
	steps := len(n.cpu)
	for k := range steps {
		at := traceStart.Add(time.Duration(k) * tracePoll)
		u, stamp := key{u: [2]int64{n.cpu[k], n.mem[k]}}, at
		var stat *policy.Statistic
		if m.window {
			h.Observe(m.config, at, n.cpu[k], n.mem[k])
			st, newest, _ := h.Usage(m.config)
			u, stamp, stat = key{u: [2]int64{st.CPU, st.Memory}, warming: st.WarmingUp}, newest, &st
		}
		if k == 0 || u != last {
			res := policy.Compute(policy.Input{Node: node, Writer: names.KubeletUser(n.name), Now: at,
				Usage: &policy.UsageSample{Requests: requests, Timestamp: stamp, Statistic: stat,
					Usage: corev1.ResourceList{corev1.ResourceCPU: policy.Quantity(corev1.ResourceCPU, u.u[0]),
						corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, u.u[1])}}}, settings)
			if res.Fallback {
				return t, fmt.Errorf("%s at %s: the policy fell back: %v", n.name, at, res.Warnings)
			}
			got = [2]int64{policy.Amount(corev1.ResourceCPU, res.Allocatable[corev1.ResourceCPU]),
				policy.Amount(corev1.ResourceMemory, res.Allocatable[corev1.ResourceMemory])}
			last = u
		}
		t.samples++
		for r := range 2 {
			t.gained[r] += float64(got[r]-raw[r]) / float64(raw[r])
			if k > 0 && got[r] != prev[r] {
				t.changes[r]++
				if got[r] < prev[r] {
					t.downs[r]++
				}
			}
			if got[r] > raw[r] && k+1 < steps {
				t.over[r]++
				next := [2]int64{n.cpu[k+1], n.mem[k+1]}[r]
				room := max(0, got[r]-req[r])
				if next+room > raw[r] {
					t.exceed[r]++
				}
				if ahead[r][k]+room > raw[r] {
					t.exceedAhead[r]++
				}
			}
		}
		prev = got
	}
	t.hours = float64(steps) * tracePoll.Hours()
	return t, nil
}

// replayTable is the benchmark's result as a markdown table.
func replayTable(modes []replayMode, totals []tally, nodes int, took time.Duration) string {
	var s strings.Builder
	fmt.Fprintf(&s, "Replay: %d nodes, 24 h at a %s poll (seed %d); usage policy, cpu ratio 2, memory ratio 1.5, margin 20%%.\n\n",
		nodes, tracePoll, traceSeed)
	s.WriteString("| U from | cpu gained | memory gained | cpu over raw¹ | memory over raw¹ | cpu over raw in 10 min² | memory over raw in 10 min² | cpu changes /node-h³ | memory changes /node-h³ |\n")
	s.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, m := range modes {
		t := totals[i]
		fmt.Fprintf(&s, "| %s | %.1f%% | %.1f%% | %.2f%% | %.3f%% | %.1f%% | %.2f%% | %s | %s |\n", m.name,
			100*t.gain(0), 100*t.gain(1), 100*t.exceeded(0), 100*t.exceeded(1),
			100*t.exceededAhead(0), 100*t.exceededAhead(1), t.changesCell(0), t.changesCell(1))
	}
	s.WriteString("\n¹ Of the samples where extra capacity was handed out (A' > A): the share where the next sample's usage plus the room handed out, (A' - R)⁺ filled with pods that use what they request, exceeded the raw allocatable A.\n")
	s.WriteString("² The same, with the pods staying: usage at any sample in the next 10 minutes plus that room exceeded A.\n")
	s.WriteString("³ Changes of the allocatable stored, per node and hour (lowered / raised).\n")
	fmt.Fprintf(&s, "\nReplayed in %s.\n", took.Round(time.Second))
	return s.String()
}
