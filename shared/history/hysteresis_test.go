package history

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestHeldAdvance runs one resource's hysteresis over statistics (the window's percentile at
// each sample) with a step of 250 and 600 s before a raise.
func TestHeldAdvance(t *testing.T) {
	type step struct{ at, stat, want uint32 }
	tests := []struct {
		name  string
		steps []step
	}{
		{"the first statistic is taken", []step{{0, 1000, 1000}}},
		{"a rise is taken at once", []step{{0, 1000, 1000}, {15, 2000, 2000}, {30, 2001, 2001}}},
		{"a fall waits 600 s, then takes the highest statistic seen meanwhile", []step{
			{0, 2000, 2000}, {15, 1000, 2000}, {300, 1500, 2000}, {600, 1200, 2000}, {614, 1000, 2000}, {615, 1100, 1500}}},
		{"a fall within the step never raises", []step{
			{0, 2000, 2000}, {15, 1750, 2000}, {3600, 1750, 2000}, {86400, 1800, 2000}}},
		{"a statistic back within the step restarts the period", []step{
			{0, 2000, 2000}, {15, 1000, 2000}, {500, 1750, 2000}, {600, 1000, 2000}, {1100, 1000, 2000}, {1199, 1000, 2000}, {1200, 1000, 1000}}},
		{"a rise during the period cancels it", []step{
			{0, 2000, 2000}, {15, 1000, 2000}, {300, 2100, 2100}, {700, 1000, 2100}, {1299, 1000, 2100}, {1300, 1000, 1000}}},
		{"after a raise the next period starts afresh", []step{
			{0, 3000, 3000}, {15, 1000, 3000}, {300, 2000, 3000}, {615, 1000, 2000}, {630, 1000, 2000}, {1229, 1000, 2000}, {1230, 1000, 1000}}},
		{"a burst then quiet: down at once, back up only after 600 s", []step{
			{0, 1000, 1000}, {15, 4000, 4000}, {30, 4000, 4000}, {45, 1000, 4000}, {60, 1000, 4000}, {644, 1000, 4000}, {645, 1000, 1000}}},
		{"a gap counts as the statistic staying lower", []step{{0, 2000, 2000}, {15, 1000, 2000}, {5000, 1000, 1000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h held
			var want, got []uint32
			for _, s := range tt.steps {
				h.advance(s.stat, s.at, 250, 600)
				want, got = append(want, s.want), append(got, h.value)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("held value after each statistic (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("no wait follows at once", func(t *testing.T) {
		var h held
		h.advance(2000, 0, 250, 0)
		h.advance(1000, 15, 250, 0)
		if h.value != 1000 {
			t.Errorf("held %d, want 1000", h.value)
		}
	})
}

// change is when a node's statistic changed, in seconds after t0, and to what.
type change struct {
	At       int64
	CPU, Mem int64
}

// changes observes cpu(i) and mem(i) every poll seconds for samples samples and lists the
// changes of the statistic Usage reports.
func changes(c Config, poll int64, samples int, cpu, mem func(i int) int64) []change {
	var n Node
	var out []change
	for i := range samples {
		at := int64(i) * poll
		n.Observe(c, t0.Add(time.Duration(at)*time.Second), cpu(i), mem(i))
		st, _, _ := n.Usage(c)
		if len(out) == 0 || out[len(out)-1].CPU != st.CPU || out[len(out)-1].Mem != st.Memory {
			out = append(out, change{at, st.CPU, st.Memory})
		}
	}
	return out
}

// TestBurstThenQuiet follows a burst through a window and the hysteresis: the statistic rises at
// the burst's first sample, stays while the burst is in the window, and falls RaiseAfter after the
// burst has left it, never sooner.
func TestBurstThenQuiet(t *testing.T) {
	c := DefaultConfig()
	c.Window, c.MinWindow, c.RaiseAfter, c.CPUPercentile = 10*time.Minute, 0, 5*time.Minute, 100
	burst := func(quiet, high int64) func(int) int64 {
		return func(i int) int64 {
			if i == 10 || i == 11 { // at 600 s and 660 s
				return high
			}
			return quiet
		}
	}
	tests := []struct {
		name     string
		cpu, mem func(int) int64
		want     []change
	}{
		// The burst's last sample (660 s) leaves the window after 1260 s, so the statistic falls
		// at 1320 s; 300 s later (1620 s) the held value follows.
		{"cpu and memory burst", burst(1000, 3000), burst(1<<30, 3<<30),
			[]change{{0, 1000, 1 << 30}, {600, 3000, 3 << 30}, {1620, 1000, 1 << 30}}},
		// A memory burst of 200Mi is within the 256Mi step: it is taken at once and kept.
		{"memory burst within the step", burst(1000, 1000), burst(1<<30, 1<<30+200<<20),
			[]change{{0, 1000, 1 << 30}, {600, 1000, 1<<30 + 200<<20}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, changes(c, 60, 40, tt.cpu, tt.mem)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}
