package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/overcommit-dev/overcommit/shared/names"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// In policy mode the apiserver cannot ask metrics.k8s.io, so the webhook publishes what the usage
// policy may reclaim on each node as a node annotation (names.UsageTargetAnnotation), and confirms
// all of them at once with one timestamp in the settings ConfigMap (KeyUsageTargetsConfirmedAt)
// after every round. A node's record is trusted only while that confirmation is at most
// MaxMetricsAge older than the node's own clock (its newest condition heartbeat): CEL has no
// clock of its own, and one cluster-wide confirmation costs one write per round where a timestamp
// per node would rewrite every node every round.
const (
	// UsageTargetPattern is the record: reclaimable millicores and bytes, R - U*(1+m), which may
	// be negative (usage above requests), optionally followed by the statistic U came from
	// (StatisticPattern), which the policy copies into the applied record. Bounded so that raw +
	// reclaim stays in int64.
	UsageTargetPattern = `^cpu=(-?[0-9]{1,17})m,memory=(-?[0-9]{1,17})(,` + StatisticPattern + `)?$`
	// ConfirmedAtPattern is KeyUsageTargetsConfirmedAt: Unix seconds.
	ConfirmedAtPattern = `^[0-9]{1,12}$`
	// KeyUsageTargetsConfirmedAt is written by the webhook in policy mode, not by operators.
	KeyUsageTargetsConfirmedAt = "usageTargetsConfirmedAt"
)

// MaxUsageTargetLength is the longest record UsageTargetPattern matches; a longer annotation is
// refused before any pattern scans it.
var MaxUsageTargetLength = len("cpu=-m,memory=-,") + 2*17 + MaxStatisticLength

var (
	usageTargetRE = regexp.MustCompile(UsageTargetPattern)
	confirmedAtRE = regexp.MustCompile(ConfirmedAtPattern)
)

// UsageTarget is what the usage policy may reclaim on one node, per resource, in the policy's
// amounts (millicores, bytes): requests minus usage with its margin.
type UsageTarget map[corev1.ResourceName]int64

// reclaim is R - U*(1+m) for one resource: what the usage policy adds to the raw allocatable
// before clamping to [A, A*r]. Both modes compute the target through it.
func reclaim(name corev1.ResourceName, requested corev1.ResourceList, used resource.Quantity, margin Ratio) (int64, error) {
	// Measured usage is not a kubelet's report to keep exact: metrics-server reports cpu in
	// nanocores, so it is rounded up to the policy's unit (less to reclaim, never more).
	if used.Sign() < 0 {
		return 0, fmt.Errorf("%s usage %s is negative", name, used.String())
	}
	u := Amount(name, used) // rounds up
	if u > MaxAmount {
		return 0, fmt.Errorf("%s usage %s is above the largest amount overcommit handles", name, used.String())
	}
	var r int64
	if q, ok := requested[name]; ok {
		r = min(Amount(name, q), MaxAmount)
	}
	return r - mulCeil(u, One+margin), nil
}

// TargetFromSample computes a node's usage target from its sample. A resource whose usage is not
// measured (or not exact) is left out, with a problem for it: the policy then keeps it raw.
func TargetFromSample(u UsageSample, margin Ratio) (UsageTarget, []error) {
	t := UsageTarget{}
	var problems []error
	for _, name := range Resources {
		used, ok := u.Usage[name]
		if !ok {
			problems = append(problems, fmt.Errorf("no %s usage measured; no %s overcommit", name, name))
			continue
		}
		r, err := reclaim(name, u.Requests, used, margin)
		if err != nil {
			problems = append(problems, fmt.Errorf("%w; no %s overcommit", err, name))
			continue
		}
		t[name] = r
	}
	return t, problems
}

// String is the annotation's value. A resource left out reclaims nothing (0), which the policy
// clamps to the raw allocatable, as it does for a resource without a target.
func (t UsageTarget) String() string {
	return fmt.Sprintf("cpu=%dm,memory=%d", t[corev1.ResourceCPU], t[corev1.ResourceMemory])
}

// Format is the published record: String, then the statistic the target came from, if any.
func (t UsageTarget) Format(stat *Statistic) string {
	if stat == nil {
		return t.String()
	}
	return t.String() + "," + stat.String()
}

// ParseUsageTarget reads names.UsageTargetAnnotation's reclaim.
func ParseUsageTarget(s string) (UsageTarget, error) {
	t, _, err := ParsePublishedTarget(s)
	return t, err
}

// ParsePublishedTarget reads names.UsageTargetAnnotation: the reclaim and, when the record
// carries one, the statistic it came from.
func ParsePublishedTarget(s string) (UsageTarget, *Statistic, error) {
	if len(s) > MaxUsageTargetLength {
		return nil, nil, fmt.Errorf("longer than %d characters", MaxUsageTargetLength)
	}
	m := usageTargetRE.FindStringSubmatch(s)
	if m == nil {
		return nil, nil, fmt.Errorf("not in the layout %q", "cpu=<millicores>m,memory=<bytes>[,<statistic>]")
	}
	cpu, _ := strconv.ParseInt(m[1], 10, 64)
	mem, _ := strconv.ParseInt(m[2], 10, 64)
	t := UsageTarget{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}
	if m[3] == "" {
		return t, nil, nil
	}
	st, err := ParseStatistic(m[3][1:])
	if err != nil {
		return nil, nil, fmt.Errorf("statistic: %w", err)
	}
	return t, &st, nil
}

// WarmupTarget is the reclaim while the usage window is too short to trust (Statistic.WarmingUp):
// R - A per resource, so that the usage policy stores max(A, min(R, ceiling)). The node counts
// as fully used: no pod that does not fit today is admitted, and every pod that runs still fits
// if the kubelet restarts and re-admits them.
func WarmupTarget(requests corev1.ResourceList, raw map[corev1.ResourceName]int64) UsageTarget {
	t := UsageTarget{}
	for _, name := range Resources {
		a, ok := raw[name]
		if !ok {
			continue
		}
		var r int64
		if q, ok := requests[name]; ok {
			r = min(Amount(name, q), MaxAmount)
		}
		t[name] = r - a
	}
	return t
}

// ParseConfirmedAt reads KeyUsageTargetsConfirmedAt; ok is false when it is absent or unreadable.
func ParseConfirmedAt(data map[string]string) (time.Time, bool) {
	s, ok := data[KeyUsageTargetsConfirmedAt]
	if !ok || !confirmedAtRE.MatchString(s) {
		return time.Time{}, false
	}
	secs, _ := strconv.ParseInt(s, 10, 64)
	return time.Unix(secs, 0), true
}

// Heartbeat is a node's own clock as CEL can see it: the newest lastHeartbeatTime of its
// conditions, in whole seconds; zero when it has none.
func Heartbeat(conditions []corev1.NodeCondition) time.Time {
	var t time.Time
	for _, c := range conditions {
		if c.LastHeartbeatTime.After(t) {
			t = c.LastHeartbeatTime.Time
		}
	}
	return t.Truncate(time.Second)
}

// WithConfirmation returns s with TargetsConfirmedAt read from the settings ConfigMap's data,
// which carries it whether or not the rest of the data is valid.
func (s Settings) WithConfirmation(data map[string]string) Settings {
	s.TargetsConfirmedAt, _ = ParseConfirmedAt(data)
	return s
}

// publishedTarget returns the node's published usage target when the settings confirm it fresh
// by the node's clock, else records a fallback.
func (res *Result) publishedTarget(in Input, s Settings) (UsageTarget, *Statistic) {
	text, ok := in.Node.Annotations[names.UsageTargetAnnotation]
	why := in.UsageUnavailable
	switch {
	case !ok:
		if why == "" {
			why = "no usage data and no published usage target"
		}
		res.fallback("usage policy: %s; no overcommit", why)
		return nil, nil
	case s.TargetsConfirmedAt.IsZero():
		res.fallback("usage policy: the published usage targets were never confirmed (%s in the settings ConfigMap); no overcommit", KeyUsageTargetsConfirmedAt)
		return nil, nil
	case in.Node.Heartbeat.IsZero():
		res.fallback("usage policy: the node reports no condition heartbeat to judge its usage target's age by; no overcommit")
		return nil, nil
	}
	if age := in.Node.Heartbeat.Sub(s.TargetsConfirmedAt); age > s.MaxMetricsAge {
		res.fallback("usage policy: the usage targets were last confirmed %s before the node's heartbeat (max %s); no overcommit",
			age.Round(time.Second), s.MaxMetricsAge)
		return nil, nil
	}
	t, st, err := ParsePublishedTarget(text)
	if err != nil {
		res.fallback("usage policy: unreadable %s (%v); no overcommit", names.UsageTargetAnnotation, err)
		return nil, nil
	}
	return t, st
}
