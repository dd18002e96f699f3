package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Statistic says what a usage sample's Usage is: a percentile of each resource's usage over the
// node's window of NodeMetrics samples, after hysteresis (see shared/history). It is recorded in
// the applied record and the published usage target, so an operator can see why a node got what
// it got.
type Statistic struct {
	// CPUPercentile and MemoryPercentile are 1 to 100; 100 is the window's maximum.
	CPUPercentile, MemoryPercentile int
	// CPU (millicores) and Memory (bytes) are the values the policy used.
	CPU, Memory int64
	// Window is the time between the oldest and the newest sample, in whole seconds.
	Window time.Duration
	// Samples is how many samples the window holds.
	Samples int
	// WarmingUp is true while the window covers less than the webhook's minimum span (after a
	// start): the node then counts as fully used, so its allocatable is held at its pods'
	// requests (WarmupTarget).
	WarmingUp bool
}

// StatisticPattern is Statistic.String's layout, for Go and the CEL of policy mode (RE2).
const StatisticPattern = `cpuUsage=p([0-9]{1,3}):([0-9]{1,17})m,memoryUsage=p([0-9]{1,3}):([0-9]{1,17}),window=([0-9]{1,7})s,samples=([0-9]{1,6})(,warming-up)?`

// MaxStatisticLength is the longest text StatisticPattern matches.
var MaxStatisticLength = len("cpuUsage=p:m,memoryUsage=p:,window=s,samples=,warming-up") + 3 + 17 + 3 + 17 + 7 + 6

var statisticRE = regexp.MustCompile("^" + StatisticPattern + "$")

// String is the statistic as records carry it:
// "cpuUsage=p95:1234m,memoryUsage=p100:5678,window=3590s,samples=240" (",warming-up" appended
// while warming up).
func (s Statistic) String() string {
	b := make([]byte, 0, 96)
	b = append(b, "cpuUsage=p"...)
	b = strconv.AppendInt(b, int64(s.CPUPercentile), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, s.CPU, 10)
	b = append(b, "m,memoryUsage=p"...)
	b = strconv.AppendInt(b, int64(s.MemoryPercentile), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, s.Memory, 10)
	b = append(b, ",window="...)
	b = strconv.AppendInt(b, int64(s.Window/time.Second), 10)
	b = append(b, "s,samples="...)
	b = strconv.AppendInt(b, int64(s.Samples), 10)
	if s.WarmingUp {
		b = append(b, ",warming-up"...)
	}
	return string(b)
}

// ParseStatistic reads what String wrote.
func ParseStatistic(s string) (Statistic, error) {
	if len(s) > MaxStatisticLength {
		return Statistic{}, fmt.Errorf("longer than %d characters", MaxStatisticLength)
	}
	m := statisticRE.FindStringSubmatch(s)
	if m == nil {
		return Statistic{}, fmt.Errorf("not in the layout %q", "cpuUsage=p<n>:<millicores>m,memoryUsage=p<n>:<bytes>,window=<seconds>s,samples=<n>")
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(m[i], 10, 64); return v }
	st := Statistic{CPUPercentile: int(n(1)), CPU: n(2), MemoryPercentile: int(n(3)), Memory: n(4),
		Window: time.Duration(n(5)) * time.Second, Samples: int(n(6)), WarmingUp: m[7] != ""}
	if st.CPUPercentile < 1 || st.CPUPercentile > 100 || st.MemoryPercentile < 1 || st.MemoryPercentile > 100 {
		return Statistic{}, fmt.Errorf("percentiles must be 1 to 100")
	}
	return st, nil
}

// Describe is the statistic for people: "cpu p95 1234m, memory max 512Mi over 59m50s (240
// samples)".
func (s Statistic) Describe() string {
	pct := func(p int) string {
		if p == 100 {
			return "max"
		}
		return "p" + strconv.Itoa(p)
	}
	cpu, mem := Quantity(corev1.ResourceCPU, s.CPU), Quantity(corev1.ResourceMemory, s.Memory)
	var b strings.Builder
	fmt.Fprintf(&b, "cpu %s %s, memory %s %s over %s (%d samples)",
		pct(s.CPUPercentile), cpu.String(), pct(s.MemoryPercentile), mem.String(), s.Window, s.Samples)
	if s.WarmingUp {
		b.WriteString(", warming up")
	}
	return b.String()
}
