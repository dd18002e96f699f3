package output

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Statistic is the usage statistic a node's result came from (policy.Statistic), as the
// reports print it: what the usage policy took as the node's usage, so an operator can see why
// the node got what it got.
type Statistic struct {
	// CPUPercentile and MemoryPercentile are 1 to 100; 100 is the window's maximum.
	CPUPercentile int               `json:"cpuPercentile"`
	CPU           resource.Quantity `json:"cpu"`
	// MemoryPercentile is as CPUPercentile.
	MemoryPercentile int               `json:"memoryPercentile"`
	Memory           resource.Quantity `json:"memory"`
	// Window is the span from the oldest to the newest sample, as a Go duration ("59m50s").
	Window metav1.Duration `json:"window"`
	// Samples is how many NodeMetrics samples the window held.
	Samples int `json:"samples"`
	// WarmingUp: the window was shorter than the minimum span, so allocatable was held at the
	// pods' requests.
	WarmingUp bool `json:"warmingUp"`
}

// RecordedStatistic is the statistic of an applied record (its "usage" field), nil when it has
// none or it is unreadable: the record is anyone's text, and a statistic that does not parse
// explains nothing.
func RecordedStatistic(a policy.Applied) *policy.Statistic {
	if a.Usage == "" {
		return nil
	}
	s, err := policy.ParseStatistic(a.Usage)
	if err != nil {
		return nil
	}
	return &s
}

// NewStatistic reports s; nil for nil.
func NewStatistic(s *policy.Statistic) *Statistic {
	if s == nil {
		return nil
	}
	return &Statistic{
		CPUPercentile: s.CPUPercentile, CPU: policy.Quantity(corev1.ResourceCPU, s.CPU),
		MemoryPercentile: s.MemoryPercentile, Memory: policy.Quantity(corev1.ResourceMemory, s.Memory),
		Window: metav1.Duration{Duration: s.Window}, Samples: s.Samples, WarmingUp: s.WarmingUp,
	}
}

// Policy is the statistic as shared/policy has it.
func (s Statistic) Policy() policy.Statistic {
	return policy.Statistic{
		CPUPercentile: s.CPUPercentile, CPU: policy.Amount(corev1.ResourceCPU, s.CPU),
		MemoryPercentile: s.MemoryPercentile, Memory: policy.Amount(corev1.ResourceMemory, s.Memory),
		Window: s.Window.Duration, Samples: s.Samples, WarmingUp: s.WarmingUp,
	}
}

// Short is the statistic in a table cell: "p95 1200m, max 5Gi over 59m (240)", cpu first,
// the window's span as kubectl prints ages and the sample count in parentheses; ", warming up"
// is appended while the window is too short to trust.
func (s Statistic) Short() string {
	var b strings.Builder
	b.WriteString(percentile(s.CPUPercentile) + " " + s.CPU.String() + ", ")
	b.WriteString(percentile(s.MemoryPercentile) + " " + s.Memory.String())
	b.WriteString(" over " + duration.HumanDuration(s.Window.Duration) + " (" + strconv.Itoa(s.Samples) + ")")
	if s.WarmingUp {
		b.WriteString(", warming up")
	}
	return b.String()
}

// percentile spells a percentile as policy.Statistic.Describe does: 100 is the maximum.
func percentile(p int) string {
	if p == 100 {
		return "max"
	}
	return "p" + strconv.Itoa(p)
}

// Held is a pressure hold (the applied record's "hold") in a table cell: "held: memory-pressure";
// "" when not held.
func Held(hold string) string {
	if hold == "" {
		return ""
	}
	return "held: " + hold
}

// Basis joins what a node's result was based on for a table cell, leaving out the empty parts.
func Basis(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "; ")
}
