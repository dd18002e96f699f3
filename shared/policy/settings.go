package policy

import (
	"fmt"
	"time"
)

// Limits bound one resource's ratio: Default applies when a node has no annotation, Max caps it.
type Limits struct {
	Default Ratio
	Max     Ratio
}

// Settings are the webhook's operator-chosen knobs. The plugin uses the same values to validate
// and preview, so both agree on what a node will get.
type Settings struct {
	CPU    Limits
	Memory Limits
	// UsageMargin is the safety margin m of the usage policy: usage counts as U*(1+m).
	UsageMargin Ratio
	// MaxMetricsAge is how old a NodeMetrics sample may be before the usage policy stops trusting
	// it and falls back to the raw allocatable.
	MaxMetricsAge time.Duration
}

// DefaultSettings are the webhook's flag defaults: CPU x1.5 (at most x4), memory untouched unless a
// node asks (at most x1.5, since memory is not compressible and overcommitting it risks OOM kills).
func DefaultSettings() Settings {
	return Settings{
		CPU:           Limits{Default: MustParseRatio("1.5"), Max: MustParseRatio("4")},
		Memory:        Limits{Default: One, Max: MustParseRatio("1.5")},
		UsageMargin:   MustParseRatio("0.2"),
		MaxMetricsAge: 3 * time.Minute,
	}
}

// Validate reports settings that cannot work; the webhook refuses to start with them.
func (s Settings) Validate() error {
	for _, l := range []struct {
		name string
		Limits
	}{{"cpu", s.CPU}, {"memory", s.Memory}} {
		if l.Max < One {
			return fmt.Errorf("max %s ratio %s is below 1", l.name, l.Max)
		}
		if l.Default < One || l.Default > l.Max {
			return fmt.Errorf("default %s ratio %s must be between 1 and the max %s", l.name, l.Default, l.Max)
		}
	}
	if s.UsageMargin < 0 {
		return fmt.Errorf("usage margin %s is negative", s.UsageMargin)
	}
	if s.MaxMetricsAge <= 0 {
		return fmt.Errorf("max metrics age %s must be positive", s.MaxMetricsAge)
	}
	return nil
}
