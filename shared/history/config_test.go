package history

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // the error, "" for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"shortest window, no minimum, no hysteresis", func(c *Config) {
			c.Window, c.MinWindow, c.RaiseAfter, c.CPUStep, c.MemoryStep = time.Minute, 0, 0, 0, 0
		}, ""},
		{"longest window, minimum half of it", func(c *Config) { c.Window, c.MinWindow = 24*time.Hour, 12*time.Hour }, ""},
		{"percentiles 1 and 100", func(c *Config) { c.CPUPercentile, c.MemoryPercentile = 1, 100 }, ""},
		{"window too short", func(c *Config) { c.Window = 59 * time.Second }, "--usage-window 59s: must be 1m to 24h"},
		{"window too long", func(c *Config) { c.Window = 25 * time.Hour }, "--usage-window 25h0m0s: must be 1m to 24h"},
		{"negative minimum", func(c *Config) { c.MinWindow = -time.Second }, "--usage-min-window -1s: must be 0 to half of --usage-window (30m0s)"},
		{"minimum over half the window", func(c *Config) { c.MinWindow = 31 * time.Minute },
			"--usage-min-window 31m0s: must be 0 to half of --usage-window (30m0s)"},
		{"cpu percentile 0", func(c *Config) { c.CPUPercentile = 0 }, "--usage-cpu-percentile 0: must be 1 to 100"},
		{"cpu percentile 101", func(c *Config) { c.CPUPercentile = 101 }, "--usage-cpu-percentile 101: must be 1 to 100"},
		{"memory percentile 0", func(c *Config) { c.MemoryPercentile = 0 }, "--usage-memory-percentile 0: must be 1 to 100"},
		{"negative raise-after", func(c *Config) { c.RaiseAfter = -time.Minute }, "--usage-raise-after -1m0s: must be 0 to 24h"},
		{"raise-after over a day", func(c *Config) { c.RaiseAfter = 25 * time.Hour }, "--usage-raise-after 25h0m0s: must be 0 to 24h"},
		{"negative cpu step", func(c *Config) { c.CPUStep = -1 }, "--usage-raise-step-cpu -1m: must not be negative"},
		{"negative memory step", func(c *Config) { c.MemoryStep = -1 }, "--usage-raise-step-memory -1: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() (-want +got):\n%s", diff)
			}
		})
	}
}
