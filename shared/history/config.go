// Package history keeps, per node, a bounded window of usage samples and the statistic the usage
// policy reclaims against: a percentile of the window, held by hysteresis so that allocatable
// falls at once when usage rises and rises only after usage has stayed lower for a while. It is
// pure: no clock, no I/O; the caller passes each sample's time and locks a Node it shares.
package history

import (
	"fmt"
	"time"
)

// Flag names, so that the webhook's flags and the messages of Validate agree.
const (
	FlagWindow           = "usage-window"
	FlagMinWindow        = "usage-min-window"
	FlagCPUPercentile    = "usage-cpu-percentile"
	FlagMemoryPercentile = "usage-memory-percentile"
	FlagRaiseAfter       = "usage-raise-after"
	FlagCPUStep          = "usage-raise-step-cpu"
	FlagMemoryStep       = "usage-raise-step-memory"
)

// MaxWindow bounds Window: a node keeps at most MaxSamples samples, so a longer window would
// only coarsen them (see Node), and a window held in memory is lost at every restart anyway.
const MaxWindow = 24 * time.Hour

// MinWindowFloor is the shortest Window: below a minute a window holds a handful of samples
// at the usual 15 s poll and is the instantaneous policy under another name.
const MinWindowFloor = time.Minute

// Config is how a node's usage window becomes its statistic.
type Config struct {
	// Window is how far back samples count (--usage-window).
	Window time.Duration
	// MinWindow is the least span of samples the statistic is trusted with; below it the
	// statistic is WarmingUp and the policy keeps the node at its requests (--usage-min-window).
	MinWindow time.Duration
	// CPUPercentile and MemoryPercentile pick the nearest-rank percentile of the window, 1 to
	// 100; 100 is the window's maximum (--usage-cpu-percentile, --usage-memory-percentile).
	CPUPercentile    int
	MemoryPercentile int
	// RaiseAfter is how long a statistic must stay lower than the held one by more than the
	// step before the held one follows it down, which raises allocatable (--usage-raise-after).
	RaiseAfter time.Duration
	// CPUStep (millicores) and MemoryStep (bytes) are how much lower the statistic must be for
	// that period; a smaller fall keeps the held value (--usage-raise-step-cpu,
	// --usage-raise-step-memory; memory counts in whole MiB, rounded up, like the samples).
	CPUStep    int64
	MemoryStep int64
}

// DefaultConfig is the webhook's flag defaults:
//   - a 1h window: long enough to hold an hour's bursts and the rise of a daily cycle, short
//     enough to follow that cycle down and to cost about 3 KB per node at a 15 s poll;
//   - 10m before the statistic is trusted (40 samples at a 15 s poll, enough for a p95 to
//     mean more than the maximum of a few samples);
//   - cpu p95: cpu is compressible, so a peak above the statistic is throttled, not killed;
//   - memory p100, the window's maximum: memory is not compressible, and a peak above what was
//     handed out is an OOM kill;
//   - raise after 10m lower by more than 250m cpu or 256Mi memory: a burst that ends does not
//     hand its room back within one burst-and-quiet cycle, and noise never moves allocatable up.
func DefaultConfig() Config {
	return Config{
		Window:           time.Hour,
		MinWindow:        10 * time.Minute,
		CPUPercentile:    95,
		MemoryPercentile: 100,
		RaiseAfter:       10 * time.Minute,
		CPUStep:          250,
		MemoryStep:       256 << 20,
	}
}

// Validate reports a configuration that cannot work, naming the flag.
func (c Config) Validate() error {
	switch {
	case c.Window < MinWindowFloor || c.Window > MaxWindow:
		return fmt.Errorf("--%s %s: must be %s to %s", FlagWindow, c.Window, short(MinWindowFloor), short(MaxWindow))
	case c.MinWindow < 0 || c.MinWindow > c.Window/2:
		// The span of a window stays a poll interval short of the window, and any longer
		// minimum would leave a node warming up for most of an hour after every restart.
		return fmt.Errorf("--%s %s: must be 0 to half of --%s (%s)", FlagMinWindow, c.MinWindow, FlagWindow, c.Window/2)
	case c.CPUPercentile < 1 || c.CPUPercentile > 100:
		return fmt.Errorf("--%s %d: must be 1 to 100", FlagCPUPercentile, c.CPUPercentile)
	case c.MemoryPercentile < 1 || c.MemoryPercentile > 100:
		return fmt.Errorf("--%s %d: must be 1 to 100", FlagMemoryPercentile, c.MemoryPercentile)
	case c.RaiseAfter < 0 || c.RaiseAfter > MaxWindow:
		return fmt.Errorf("--%s %s: must be 0 to %s", FlagRaiseAfter, c.RaiseAfter, short(MaxWindow))
	case c.CPUStep < 0:
		return fmt.Errorf("--%s %dm: must not be negative", FlagCPUStep, c.CPUStep)
	case c.MemoryStep < 0:
		return fmt.Errorf("--%s %d: must not be negative", FlagMemoryStep, c.MemoryStep)
	}
	return nil
}

// short spells a whole number of hours or minutes without the trailing zero units ("24h", "1m").
func short(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}
