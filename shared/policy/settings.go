package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
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
	// TargetsConfirmedAt is when the webhook last confirmed the published usage targets
	// (KeyUsageTargetsConfirmedAt; see WithConfirmation); zero when never. Not an operator's knob:
	// Validate, Data and the JSON form leave it out.
	TargetsConfirmedAt time.Time `json:"-"`
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
		if l.Max < One || l.Max > MaxRatio {
			return fmt.Errorf("max %s ratio %s must be between 1 and %s", l.name, l.Max, MaxRatio)
		}
		if l.Default < One || l.Default > l.Max {
			return fmt.Errorf("default %s ratio %s must be between 1 and the max %s", l.name, l.Default, l.Max)
		}
	}
	if s.UsageMargin < 0 || s.UsageMargin > MaxRatio {
		return fmt.Errorf("usage margin %s must be between 0 and %s", s.UsageMargin, MaxRatio)
	}
	if s.MaxMetricsAge <= 0 {
		return fmt.Errorf("max metrics age %s must be positive", s.MaxMetricsAge)
	}
	return nil
}

// settingsJSON is the JSON form of Settings, as reports print it.
type settingsJSON struct {
	CPU           limitsJSON `json:"cpu"`
	Memory        limitsJSON `json:"memory"`
	UsageMargin   string     `json:"usageMargin"`
	MaxMetricsAge string     `json:"maxMetricsAge"`
}

type limitsJSON struct {
	Default string `json:"default"`
	Max     string `json:"max"`
}

// MarshalJSON encodes ratios as decimal strings ("1.5") and the age as a Go duration ("3m0s").
func (s Settings) MarshalJSON() ([]byte, error) {
	return json.Marshal(settingsJSON{
		CPU:           limitsJSON{Default: s.CPU.Default.String(), Max: s.CPU.Max.String()},
		Memory:        limitsJSON{Default: s.Memory.Default.String(), Max: s.Memory.Max.String()},
		UsageMargin:   s.UsageMargin.String(),
		MaxMetricsAge: s.MaxMetricsAge.String(),
	})
}

// UnmarshalJSON decodes what MarshalJSON wrote and validates it.
func (s *Settings) UnmarshalJSON(b []byte) error {
	var in settingsJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	var out Settings
	for _, f := range []struct {
		into *Ratio
		from string
		name string
	}{
		{&out.CPU.Default, in.CPU.Default, "cpu.default"}, {&out.CPU.Max, in.CPU.Max, "cpu.max"},
		{&out.Memory.Default, in.Memory.Default, "memory.default"}, {&out.Memory.Max, in.Memory.Max, "memory.max"},
		{&out.UsageMargin, in.UsageMargin, "usageMargin"},
	} {
		if err := f.into.Set(f.from); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	age, err := time.ParseDuration(in.MaxMetricsAge)
	if err != nil {
		return fmt.Errorf("maxMetricsAge: %w", err)
	}
	out.MaxMetricsAge = age
	if err := out.Validate(); err != nil {
		return err
	}
	*s = out
	return nil
}

// ValidateRatio checks a ratio a user asks for against the limits, strictly: unlike a node
// annotation, which the webhook clamps, a command-line value that would be clamped is an error.
func ValidateRatio(resource, s string, l Limits) (Ratio, error) {
	r, err := ParseRatio(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("invalid %s ratio %q: %v (want a decimal such as 1.5)", resource, s, err)
	case r < One:
		return 0, fmt.Errorf("invalid %s ratio %q: must be at least 1", resource, s)
	case r > l.Max:
		return 0, fmt.Errorf("invalid %s ratio %q: the webhook allows at most %s", resource, s, l.Max)
	}
	return r, nil
}

// Keys of the settings ConfigMap (names.SettingsConfigMap). The webhook, the plugin and the CEL
// of policy mode (as its params) all read this one object.
const (
	KeyDefaultCPURatio    = "defaultCPURatio"
	KeyMaxCPURatio        = "maxCPURatio"
	KeyDefaultMemoryRatio = "defaultMemoryRatio"
	KeyMaxMemoryRatio     = "maxMemoryRatio"
	KeyUsageMargin        = "usageMargin"
	// KeyMetricsMaxAgeSeconds is a whole number of seconds (CEL compares durations in seconds).
	KeyMetricsMaxAgeSeconds = "metricsMaxAgeSeconds"
)

// MetricsMaxAgePattern is the only spelling of KeyMetricsMaxAgeSeconds: 1 to 86400 seconds.
const MetricsMaxAgePattern = `^[1-9][0-9]{0,4}$`

var metricsMaxAgeRE = regexp.MustCompile(MetricsMaxAgePattern)

// Data is s as the settings ConfigMap's data.
// TargetsConfirmedAt is included only when set.
func (s Settings) Data() map[string]string {
	d := map[string]string{
		KeyDefaultCPURatio:      s.CPU.Default.String(),
		KeyMaxCPURatio:          s.CPU.Max.String(),
		KeyDefaultMemoryRatio:   s.Memory.Default.String(),
		KeyMaxMemoryRatio:       s.Memory.Max.String(),
		KeyUsageMargin:          s.UsageMargin.String(),
		KeyMetricsMaxAgeSeconds: strconv.FormatInt(int64(s.MaxMetricsAge/time.Second), 10),
	}
	if !s.TargetsConfirmedAt.IsZero() {
		d[KeyUsageTargetsConfirmedAt] = strconv.FormatInt(s.TargetsConfirmedAt.Unix(), 10)
	}
	return d
}

// SettingsFromData reads the settings ConfigMap's data. Every key must be present and valid, and
// the whole must pass Validate; otherwise the error says what is wrong and callers use
// DefaultSettings, exactly as the CEL of policy mode does with the same data.
func SettingsFromData(data map[string]string) (Settings, error) {
	var s Settings
	for _, f := range []struct {
		into *Ratio
		key  string
	}{
		{&s.CPU.Default, KeyDefaultCPURatio}, {&s.CPU.Max, KeyMaxCPURatio},
		{&s.Memory.Default, KeyDefaultMemoryRatio}, {&s.Memory.Max, KeyMaxMemoryRatio},
		{&s.UsageMargin, KeyUsageMargin},
	} {
		v, ok := data[f.key]
		if !ok {
			return Settings{}, fmt.Errorf("%s is missing", f.key)
		}
		r, err := ParseRatio(v)
		if err != nil {
			return Settings{}, fmt.Errorf("%s %q: %w", f.key, v, err)
		}
		*f.into = r
	}
	age, ok := data[KeyMetricsMaxAgeSeconds]
	if !ok {
		return Settings{}, fmt.Errorf("%s is missing", KeyMetricsMaxAgeSeconds)
	}
	if !metricsMaxAgeRE.MatchString(age) {
		return Settings{}, fmt.Errorf("%s %q: want whole seconds from 1 to 99999", KeyMetricsMaxAgeSeconds, age)
	}
	secs, _ := strconv.Atoi(age)
	s.MaxMetricsAge = time.Duration(secs) * time.Second
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}
