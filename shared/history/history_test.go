package history

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// obs is a sample s seconds after t0.
type obs struct {
	s        int64
	cpu, mem int64
}

func observe(n *Node, c Config, samples ...obs) {
	for _, o := range samples {
		n.Observe(c, t0.Add(time.Duration(o.s)*time.Second), o.cpu, o.mem)
	}
}

func TestPercentile(t *testing.T) {
	seq := func(from, to uint32) []uint32 {
		var v []uint32
		for i := from; i <= to; i++ {
			v = append(v, i)
		}
		return v
	}
	tests := []struct {
		name string
		vals []uint32
		p    int
		want uint32
	}{
		{"one value, p1", []uint32{7}, 1, 7},
		{"one value, p95", []uint32{7}, 95, 7},
		{"one value, p100", []uint32{7}, 100, 7},
		{"p100 is the maximum", []uint32{3, 9, 1}, 100, 9},
		{"p1 is the minimum", []uint32{3, 9, 1}, 1, 1},
		{"p50 of four is the second", []uint32{4, 1, 3, 2}, 50, 2},
		{"p51 of four is the third", []uint32{4, 1, 3, 2}, 51, 3},
		{"p95 of 1..20 is the 19th", seq(1, 20), 95, 19},
		{"p95 of 1..100 is the 95th", seq(1, 100), 95, 95},
		{"p95 of 1..240 is the 228th", seq(1, 240), 95, 228},
		{"p95 of 1..241 is the 229th (rounds the rank up)", seq(1, 241), 95, 229},
		{"p99 of 1..10 is the maximum", seq(1, 10), 99, 10},
		{"duplicates count", []uint32{5, 5, 5, 1}, 25, 1},
		{"duplicates count, next rank", []uint32{5, 5, 5, 1}, 26, 5},
		{"unsorted", []uint32{10, 2, 8, 4, 6}, 60, 6},
		{"saturated values sort last", []uint32{math.MaxUint32, 1, 2}, 66, 2},
		{"and count as the largest", []uint32{math.MaxUint32, 1, 2}, 67, math.MaxUint32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, percentile(append([]uint32(nil), tt.vals...), tt.p)); diff != "" {
				t.Errorf("percentile(%v, %d) (-want +got):\n%s", tt.vals, tt.p, diff)
			}
		})
	}
}

// noHysteresis follows the window's statistic at once, to test the window alone.
func noHysteresis() Config {
	c := DefaultConfig()
	c.Window, c.MinWindow, c.RaiseAfter, c.CPUStep, c.MemoryStep = 2*time.Minute, time.Minute, 0, 0, 0
	c.CPUPercentile = 100
	return c
}

func TestObserve(t *testing.T) {
	const maxMiB = int64(math.MaxUint32) * mib
	type want struct {
		Stat   policy.Statistic
		Newest int64 // seconds after t0
		OK     bool
	}
	stat := func(cpu, mem int64, window time.Duration, samples int, warming bool) policy.Statistic {
		return policy.Statistic{CPUPercentile: 100, MemoryPercentile: 100, CPU: cpu, Memory: mem,
			Window: window, Samples: samples, WarmingUp: warming}
	}
	tests := []struct {
		name    string
		samples []obs
		want    want
	}{
		{"no samples", nil, want{}},
		{"one sample is warming up", []obs{{0, 500, 1 << 30}}, want{stat(500, 1<<30, 0, 1, true), 0, true}},
		{"warming up below the minimum span", []obs{{0, 1, mib}, {59, 1, mib}}, want{stat(1, mib, 59*time.Second, 2, true), 59, true}},
		{"warm at the minimum span", []obs{{0, 1, mib}, {60, 1, mib}}, want{stat(1, mib, time.Minute, 2, false), 60, true}},
		{"a sample exactly a window old stays", []obs{{0, 900, 9 * mib}, {60, 100, mib}, {120, 100, mib}},
			want{stat(900, 9*mib, 2*time.Minute, 3, false), 120, true}},
		{"a sample older than the window drops out", []obs{{0, 900, 9 * mib}, {60, 100, mib}, {121, 100, mib}},
			want{stat(100, mib, 61*time.Second, 2, false), 121, true}},
		{"after a gap longer than the window only the newest remains", []obs{{0, 900, 9 * mib}, {60, 900, 9 * mib}, {1000, 100, mib}},
			want{stat(100, mib, 0, 1, true), 1000, true}},
		{"an older sample is ignored", []obs{{60, 100, mib}, {30, 900, 9 * mib}},
			want{stat(100, mib, 0, 1, true), 60, true}},
		{"a sample at the same second is ignored", []obs{{60, 100, mib}, {60, 900, 9 * mib}},
			want{stat(100, mib, 0, 1, true), 60, true}},
		{"samples closer than the minimum spacing merge by their maximum", []obs{{0, 100, 9 * mib}, {2, 900, mib}, {4, 200, 2 * mib}},
			want{stat(900, 9*mib, 0, 1, true), 4, true}},
		{"a sample a minimum spacing after the first of a merge is a new one", []obs{{0, 100, mib}, {4, 100, mib}, {5, 300, 3 * mib}},
			want{stat(300, 3*mib, time.Second, 2, true), 5, true}},
		{"memory is rounded up to whole MiB", []obs{{0, 0, 1}}, want{stat(0, mib, 0, 1, true), 0, true}},
		{"a whole MiB stays", []obs{{0, 0, 5 * mib}}, want{stat(0, 5*mib, 0, 1, true), 0, true}},
		{"values too large saturate", []obs{{0, 1 << 40, math.MaxInt64}},
			want{stat(math.MaxUint32, maxMiB, 0, 1, true), 0, true}},
		{"negative values saturate", []obs{{0, -1, -1}},
			want{stat(math.MaxUint32, maxMiB, 0, 1, true), 0, true}},
		{"a saturated sample stays the maximum of the window", []obs{{0, 1 << 40, 1 << 60}, {60, 100, mib}},
			want{stat(math.MaxUint32, maxMiB, time.Minute, 2, false), 60, true}},
		{"the largest values that fit", []obs{{0, math.MaxUint32, maxMiB}},
			want{stat(math.MaxUint32, maxMiB, 0, 1, true), 0, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n Node
			c := noHysteresis()
			observe(&n, c, tt.samples...)
			var got want
			st, newest, ok := n.Usage(c)
			got.Stat, got.OK = st, ok
			if ok {
				got.Newest = int64(newest.Sub(t0) / time.Second)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Usage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObserveOutOfRangeTimes(t *testing.T) {
	c := noHysteresis()
	for _, at := range []time.Time{time.Unix(-1, 0), time.Unix(math.MaxUint32+1, 0)} {
		var n Node
		n.Observe(c, at, 100, mib)
		if _, _, ok := n.Usage(c); ok {
			t.Errorf("a sample at %v was kept", at)
		}
	}
	var n Node
	n.Observe(c, time.Unix(math.MaxUint32, 0), 100, mib)
	if _, newest, ok := n.Usage(c); !ok || newest.Unix() != math.MaxUint32 {
		t.Errorf("the last second that fits: Usage = %v, %v", newest, ok)
	}
}

// TestPercentileOfWindow checks the statistic over a full default window: a five-minute burst
// in an hour (20 of 241 samples) is above the 95th percentile's rank, a two-minute one (8) is not.
func TestPercentileOfWindow(t *testing.T) {
	for _, tt := range []struct {
		name      string
		burst     int // samples of 4000m at the end of an hour of 1000m
		wantCPU   int64
		wantMemGi int64
	}{
		{"no burst", 0, 1000, 2},
		{"two minutes", 8, 1000, 3},
		{"five minutes", 20, 4000, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			var n Node
			for i := range 241 {
				cpu, mem := int64(1000), int64(2<<30)
				if i >= 241-tt.burst {
					cpu, mem = 4000, 3<<30
				}
				n.Observe(c, t0.Add(time.Duration(i)*15*time.Second), cpu, mem)
			}
			st, _, _ := n.Usage(c)
			got := []int64{st.CPU, st.Memory >> 30, int64(st.Samples), int64(st.Window / time.Second)}
			if diff := cmp.Diff([]int64{tt.wantCPU, tt.wantMemGi, 241, 3600}, got); diff != "" {
				t.Errorf("cpu, memory (Gi), samples, window (s) (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPercentileMatchesSorting compares percentile with the definition (sort, take the value at
// rank ceil(p*n/100)) on random windows, few distinct values included, for every p and size.
func TestPercentileMatchesSorting(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 2, 3, 20, 241, 722, MaxSamples} {
		for _, spread := range []uint32{3, math.MaxUint32} {
			vals := make([]uint32, size)
			for i := range vals {
				vals[i] = r.Uint32N(spread)
			}
			sorted := slices.Sorted(slices.Values(vals))
			for p := 1; p <= 100; p++ {
				want := sorted[(p*size+99)/100-1]
				if got := percentile(slices.Clone(vals), p); got != want {
					t.Fatalf("p%d of %d values (spread %d): got %d, want %d", p, size, spread, got, want)
				}
			}
		}
	}
}
