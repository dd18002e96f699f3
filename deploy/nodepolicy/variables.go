package nodepolicy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

var cpu, memory = corev1.ResourceCPU, corev1.ResourceMemory

// settingsVariables read the settings ConfigMap's data (dataExpr) as policy.SettingsFromData
// does; settingsValid says whether all of it is valid and consistent.
func settingsVariables(dataExpr string) []variable {
	i := func(r policy.Ratio) string { return strconv.FormatInt(int64(r), 10) }
	var vs []variable
	add := func(name, format string, args ...any) {
		vs = append(vs, variable{name, fmt.Sprintf(format, args...)})
	}
	add("data", "%s", dataExpr)
	for _, s := range []struct{ name, key string }{
		{"setCPUDefault", policy.KeyDefaultCPURatio}, {"setCPUMax", policy.KeyMaxCPURatio},
		{"setMemoryDefault", policy.KeyDefaultMemoryRatio}, {"setMemoryMax", policy.KeyMaxMemoryRatio},
		{"setMargin", policy.KeyUsageMargin},
	} {
		add(s.name, `%q in %s ? %s : -1`, s.key, v("data"), ratioOf(fmt.Sprintf(`%s[%q]`, v("data"), s.key)))
	}
	add("settingsValid", `%[1]q in %[2]s && %[2]s[%[1]q].matches(%[3]s) && `+
		`%[4]s >= %[9]s && %[4]s <= %[10]s && %[5]s >= %[9]s && %[5]s <= %[4]s && `+
		`%[6]s >= %[9]s && %[6]s <= %[10]s && %[7]s >= %[9]s && %[7]s <= %[6]s && %[8]s >= 0 && %[8]s <= %[10]s`,
		policy.KeyMetricsMaxAgeSeconds, v("data"), lit(policy.MetricsMaxAgePattern),
		v("setCPUMax"), v("setCPUDefault"), v("setMemoryMax"), v("setMemoryDefault"), v("setMargin"),
		i(policy.One), i(policy.MaxRatio))
	return vs
}

// variables mirrors policy.Compute step by step; each name says which part.
func variables() []variable {
	d := policy.DefaultSettings()
	i := func(r policy.Ratio) string { return strconv.FormatInt(int64(r), 10) }
	var vs []variable
	add := func(name, format string, args ...any) {
		vs = append(vs, variable{name, fmt.Sprintf(format, args...)})
	}

	// Settings (policy.SettingsFromData): all keys valid and consistent, or the defaults.
	vs = append(vs, settingsVariables(`params != null && has(params.data) ? params.data : {}`)...)
	add("cpuMax", `%s ? %s : %s`, v("settingsValid"), v("setCPUMax"), i(d.CPU.Max))
	add("cpuDefault", `%s ? %s : %s`, v("settingsValid"), v("setCPUDefault"), i(d.CPU.Default))
	add("memoryMax", `%s ? %s : %s`, v("settingsValid"), v("setMemoryMax"), i(d.Memory.Max))
	add("memoryDefault", `%s ? %s : %s`, v("settingsValid"), v("setMemoryDefault"), i(d.Memory.Default))
	add("maxAgeSeconds", `%s ? int(%s[%q]) : %d`, v("settingsValid"), v("data"), policy.KeyMetricsMaxAgeSeconds, int64(d.MaxMetricsAge/time.Second))
	// The usage targets' confirmation is read whether or not the rest is valid (WithConfirmation).
	add("confirmedAt", `%[1]q in %[2]s && %[2]s[%[1]q].matches(%[3]s) ? int(%[2]s[%[1]q]) : -1`,
		policy.KeyUsageTargetsConfirmedAt, v("data"), lit(policy.ConfirmedAtPattern))

	// The node as written, and as stored before this write.
	add("ann", `has(object.metadata.annotations) ? object.metadata.annotations : {}`)
	add("inAlloc", `has(object.status) && has(object.status.allocatable) ? object.status.allocatable : {}`)
	add("inCap", `has(object.status) && has(object.status.capacity) ? object.status.capacity : {}`)
	add("oldAlloc", `oldObject != null && has(oldObject.status) && has(oldObject.status.allocatable) ? oldObject.status.allocatable : {}`)
	for _, l := range []string{"inAlloc", "inCap", "oldAlloc"} {
		add(l+"CPU", "%s", entry(v(l), cpu))
		add(l+"Memory", "%s", entry(v(l), memory))
	}

	// The node's clock (policy.Heartbeat): its newest condition heartbeat, in Unix seconds; a
	// node without one has no clock (hasClock), whatever year its heartbeats name.
	add("beats", `has(object.status) && has(object.status.conditions) ? object.status.conditions.filter(c, has(c.lastHeartbeatTime) && c.lastHeartbeatTime != null).map(c, int(timestamp(c.lastHeartbeatTime))) : []`)
	add("hasClock", `size(%s) > 0`, v("beats"))
	add("clock", `%[1]s ? %[2]s.max() : 0`, v("hasClock"), v("beats"))
	// The webhook's published records (the usage target, the requests) are trusted while the
	// settings confirm them fresh by the node's clock (Result.publishedTarget, Result.requests).
	add("published", `%[1]s >= 0 && %[2]s && %[3]s - %[1]s <= %[4]s`, v("confirmedAt"), v("hasClock"), v("clock"), v("maxAgeSeconds"))

	// The published usage target (policy.ParsePublishedTarget): the reclaim, then optionally the
	// statistic it came from, whose percentiles must be 1 to 100.
	add("targetText", `%s ? %s : ''`, hasAnn(names.UsageTargetAnnotation), ann(names.UsageTargetAnnotation))
	add("targetMatches", `size(%[1]s) <= %[2]d && %[1]s.matches(%[3]s)`, v("targetText"), policy.MaxUsageTargetLength, lit(policy.UsageTargetPattern))
	add("targetReclaim", `%s ? %s.find('^cpu=-?[0-9]+m,memory=-?[0-9]+') : ''`, v("targetMatches"), v("targetText"))
	add("targetStatistic", `%[1]s && size(%[2]s) > size(%[3]s) ? %[2]s.substring(size(%[3]s) + 1) : ''`, v("targetMatches"), v("targetText"), v("targetReclaim"))
	st := statisticLayout()
	add("statistic", `%[1]s == '' ? [] : %[1]s.findAll('[0-9]+').map(n, int(n))`, v("targetStatistic"))
	add("targetUsable", `%[1]s && (%[2]s == '' || (%[3]s[%[4]d] >= 1 && %[3]s[%[4]d] <= 100 && %[3]s[%[5]d] >= 1 && %[3]s[%[5]d] <= 100)) && %[6]s`,
		v("targetMatches"), v("targetStatistic"), v("statistic"), st.cpuPercentile, st.memoryPercentile, v("published"))
	add("reclaimCPU", `%[1]s ? int(%[2]s.find('^cpu=-?[0-9]+').substring(4)) : 0`, v("targetUsable"), v("targetReclaim"))
	add("reclaimMemory", `%[1]s ? int(%[2]s.find('-?[0-9]+$')) : 0`, v("targetUsable"), v("targetReclaim"))

	// Policy and ratios (policy.Compute, Result.ratio).
	add("policy", `%s && %s == %q ? %q : %q`, hasAnn(names.PolicyAnnotation), ann(names.PolicyAnnotation),
		names.PolicyUsage, names.PolicyUsage, names.PolicyStatic)
	for _, r := range []struct{ name, key, def, max string }{
		{"cpuRatio", names.CPURatioAnnotation, "cpuDefault", "cpuMax"},
		{"memoryRatio", names.MemoryRatioAnnotation, "memoryDefault", "memoryMax"},
	} {
		add(r.name+"Asked", `%s ? %s : -2`, hasAnn(r.key), ratioOf(ann(r.key)))
		add(r.name, `%[1]s == -2 ? %[2]s : %[1]s < %[4]s ? %[4]s : %[1]s > %[3]s ? %[3]s : %[1]s`,
			v(r.name+"Asked"), v(r.def), v(r.max), i(policy.One))
	}

	// The records (policy.ParseRaw, policy.ParseApplied).
	add("hasRaw", "%s", hasAnn(names.RawAnnotation))
	add("hasApplied", "%s", hasAnn(names.AppliedAnnotation))
	add("rawText", `%s ? %s : ''`, v("hasRaw"), ann(names.RawAnnotation))
	add("appliedText", `%s ? %s : ''`, v("hasApplied"), ann(names.AppliedAnnotation))
	add("rawReadable", `%[1]s && size(%[2]s) <= %[3]d && %[2]s.matches(%[4]s) && !%[2]s.startsWith('{"allocatable":{}')`,
		v("hasRaw"), v("rawText"), policy.MaxRecordLength, lit(policy.RawRecordPattern))
	add("appliedReadable", `%[1]s && size(%[2]s) <= %[3]d && %[2]s.startsWith('{') && %[2]s.endsWith('}') && size(%[2]s.findAll(%[4]s)) == 1`,
		v("hasApplied"), v("appliedText"), policy.MaxRecordLength, lit(policy.AppliedAllocatablePattern))
	add("rawAllocList", `%s ? %s.find(%s) : ''`, v("rawReadable"), v("rawText"), lit(`^\{"allocatable":`+policy.RecordListPattern))
	add("rawCapList", `%s ? %s.find(%s) : ''`, v("rawReadable"), v("rawText"), lit(`"capacity":`+policy.RecordListPattern))
	add("appliedAllocList", `%s ? %s.find(%s) : ''`, v("appliedReadable"), v("appliedText"), lit(policy.AppliedAllocatablePattern))
	for _, l := range []string{"rawAlloc", "rawCap", "appliedAlloc"} {
		add(l+"CPU", "%s", recordEntry(v(l+"List"), cpu))
		add(l+"Memory", "%s", recordEntry(v(l+"List"), memory))
	}

	// The never-compound rule (Result.base): "incoming", "raw", or "keep" (store as sent).
	add("kubelet", `request.userInfo.username == %q + object.metadata.name`, names.NodeUserPrefix)
	add("unchanged", `oldObject != null && %s && %s`, same(v("inAllocCPU"), v("oldAllocCPU")), same(v("inAllocMemory"), v("oldAllocMemory")))
	add("isApplied", `%s && %s`, same(v("inAllocCPU"), v("appliedAllocCPU")), same(v("inAllocMemory"), v("appliedAllocMemory")))
	add("base", `(%[1]s && !%[2]s) || (!%[3]s && !%[4]s) || (%[3]s && !%[5]s && !%[4]s) || (%[5]s && !%[6]s) ? 'incoming' : !%[7]s ? 'keep' : 'raw'`,
		v("kubelet"), v("unchanged"), v("hasApplied"), v("hasRaw"), v("appliedReadable"), v("isApplied"), v("rawReadable"))
	for _, l := range []struct{ base, raw, in string }{{"baseAlloc", "rawAlloc", "inAlloc"}, {"baseCap", "rawCap", "inCap"}} {
		for _, r := range []string{"CPU", "Memory"} {
			add(l.base+r, `%s == 'raw' ? %s : %s`, v("base"), v(l.raw+r), v(l.in+r))
		}
	}

	// The pressure guard (policy.holds): a condition that is True, or that cleared less than
	// PressureCooldown before the node's clock while the previous write was held (its applied
	// record says so; a longer record is ignored, as policy.tooLong does). The last condition of
	// a type counts, as in policy.Conditions.
	add("conditions", `has(object.status) && has(object.status.conditions) ? object.status.conditions : []`)
	add("appliedShort", `size(%s) <= %d`, v("appliedText"), policy.MaxRecordLength)
	for _, p := range []struct {
		name string
		typ  corev1.NodeConditionType
		held string
	}{{"memoryPressure", corev1.NodeMemoryPressure, policy.HeldMemoryPattern}, {"pidPressure", corev1.NodePIDPressure, policy.HeldPIDPattern}} {
		l := v(p.name + "Conditions")
		last := fmt.Sprintf(`%[1]s[size(%[1]s) - 1]`, l)
		add(p.name+"Conditions", `%s.filter(c, has(c.type) && c.type == %q)`, v("conditions"), p.typ)
		add(p.name+"True", `size(%[1]s) > 0 && has(%[2]s.status) && %[2]s.status == %[3]q`, l, last, corev1.ConditionTrue)
		add(p.name+"Cooling", `size(%[1]s) > 0 && has(%[2]s.lastTransitionTime) && %[2]s.lastTransitionTime != null && %[3]s && %[4]s - int(timestamp(%[2]s.lastTransitionTime)) < %[5]d`,
			l, last, v("hasClock"), v("clock"), int64(policy.PressureCooldown/time.Second))
		add(p.name, `%s || (%s && %s && %s.matches(%s))`, v(p.name+"True"), v(p.name+"Cooling"), v("appliedShort"), v("appliedText"), lit(p.held))
	}
	add("hold", `%[1]s && %[2]s ? %[3]q : %[1]s ? %[4]q : %[2]s ? %[5]q : ''`, v("memoryPressure"), v("pidPressure"),
		policy.HoldMemory+","+policy.HoldPID, policy.HoldMemory, policy.HoldPID)
	add("heldCPU", "%s", v("pidPressure"))
	add("heldMemory", "%s || %s", v("memoryPressure"), v("pidPressure"))
	// R (Result.requests, policy.ParseRequests): the webhook's published record, trusted as the
	// usage target is; unknown otherwise.
	add("requestsText", `%s ? %s : ''`, hasAnn(names.RequestsAnnotation), ann(names.RequestsAnnotation))
	add("requestsKnown", `size(%[1]s) <= %[2]d && %[1]s.matches(%[3]s) && %[4]s`,
		v("requestsText"), policy.MaxRequestsLength, lit(policy.RequestsPattern), v("published"))
	add("requestsCPU", `%[1]s ? [int(%[2]s.find('^cpu=[0-9]+').substring(4)), %[3]d].min() : 0`, v("requestsKnown"), v("requestsText"), policy.MaxAmount)
	add("requestsMemory", `%[1]s ? [int(%[2]s.find('[0-9]+$')), %[3]d].min() : 0`, v("requestsKnown"), v("requestsText"), policy.MaxAmount)

	// Per resource: the amounts, whether they can be changed exactly, and the new values: the
	// ratio's ceiling, or for the usage policy raw + reclaim clamped to [raw, ceiling]
	// (policy.usageTarget); raw when the target is not usable.
	for _, r := range []struct {
		suffix string
		name   corev1.ResourceName
		ratio  string
		unit   string
	}{{"CPU", cpu, "cpuRatio", "m"}, {"Memory", memory, "memoryRatio", ""}} {
		a, c := "a"+r.suffix, "c"+r.suffix
		add(a, `%s == '' ? -1 : %s`, v("baseAlloc"+r.suffix), amountOf(r.name, v("baseAlloc"+r.suffix)))
		// As in Go, only entries the write carries change: a capacity the write does not carry
		// is not read from the record either (-2, as if the record had none).
		add(c, `%s == '' || %s == '' ? -2 : %s`, v("baseCap"+r.suffix), v("inCap"+r.suffix), amountOf(r.name, v("baseCap"+r.suffix)))
		add("ok"+r.suffix, `%s != '' && %s >= 0 && %s != -1`, v("inAlloc"+r.suffix), v(a), v(c))
		add("ceil"+r.suffix, `!%s ? 0 : %s`, v("ok"+r.suffix), mulFloor(v(a), v(r.ratio)))
		add("want"+r.suffix, `!%s ? 0 : %s + %s`, v("ok"+r.suffix), v(a), v("reclaim"+r.suffix))
		add("unheld"+r.suffix, `!%[1]s ? 0 : %[2]s != %[3]q ? %[4]s : !%[5]s || %[6]s <= %[7]s ? %[7]s : %[6]s >= %[4]s ? %[4]s : %[6]s`,
			v("ok"+r.suffix), v("policy"), names.PolicyUsage, v("ceil"+r.suffix), v("targetUsable"), v("want"+r.suffix), v(a))
		// policy.hold: max(raw, min(next, R)), raw when R is unknown.
		add("next"+r.suffix, `!%[1]s || !%[2]s ? %[3]s : !%[4]s ? %[5]s : [%[5]s, [%[3]s, %[6]s].min()].max()`,
			v("ok"+r.suffix), v("held"+r.suffix), v("unheld"+r.suffix), v("requestsKnown"), v(a), v("requests"+r.suffix))
		add("outAlloc"+r.suffix, `%s ? string(%s) + '%s' : %s`, v("ok"+r.suffix), v("next"+r.suffix), r.unit, v("inAlloc"+r.suffix))
		add("capMoves"+r.suffix, `%s && %s >= 0`, v("ok"+r.suffix), v(c))
		add("outCap"+r.suffix, `%s ? string(%s + %s - %s) + '%s' : %s`, v("capMoves"+r.suffix), v(c), v("next"+r.suffix), v(a), r.unit, v("inCap"+r.suffix))
	}

	// The records to store (policy.rawRecordOf, policy.appliedRecordOf).
	add("rawRecord", `%s == 'raw' ? %s : '{"allocatable":' + %s + (%s != '' || %s != '' ? ',"capacity":' + %s : '') + '}'`,
		v("base"), v("rawText"), recordList(v("inAllocCPU"), v("inAllocMemory")),
		v("inCapCPU"), v("inCapMemory"), recordList(v("inCapCPU"), v("inCapMemory")))
	// The statistic the usage policy used is recorded as Statistic.String spells it, which
	// drops the leading zeros the pattern allows: rebuilt from its numbers.
	add("usage", `%s == %q && %s && %s != '' ? %s : ''`, v("policy"), names.PolicyUsage, v("targetUsable"), v("targetStatistic"),
		st.format(v("statistic"), v("targetStatistic")))
	add("appliedRecord", `'{"policy":"' + %s + '","cpuRatio":"' + %s + '","memoryRatio":"' + %s + '"' + (%s != '' ? ',"usage":"' + %s + '"' : '') + (%s != '' ? ',"hold":"' + %s + '"' : '') + ',"allocatable":' + %s + (%s != '' || %s != '' ? ',"capacity":' + %s : '') + '}'`,
		v("policy"), ratioString(v("cpuRatio")), ratioString(v("memoryRatio")), v("usage"), v("usage"), v("hold"), v("hold"),
		recordList(v("outAllocCPU"), v("outAllocMemory")),
		v("outCapCPU"), v("outCapMemory"), recordList(v("outCapCPU"), v("outCapMemory")))
	return vs
}

// statisticText is how the CEL spells a statistic that matched policy.StatisticPattern as
// Statistic.String does. Its layout is read from String itself (numbers 1 to 6 in its fields),
// so that the CEL follows String if its layout changes.
type statisticText struct {
	// literals surround the numbers, which come in the order the pattern and String share.
	literals []string
	// cpuPercentile and memoryPercentile are the percentiles' places among the numbers.
	cpuPercentile, memoryPercentile int
	// warmingUp is what String appends while warming up.
	warmingUp string
}

func statisticLayout() statisticText {
	s := policy.Statistic{CPUPercentile: 1, CPU: 2, MemoryPercentile: 3, Memory: 4, Window: 5 * time.Second, Samples: 6}
	cold := s.String()
	s.WarmingUp = true
	warm := s.String()
	numbers := regexp.MustCompile(`[0-9]+`)
	order := numbers.FindAllString(cold, -1)
	st := statisticText{literals: numbers.Split(cold, -1), warmingUp: strings.TrimPrefix(warm, cold),
		cpuPercentile: slices.Index(order, "1"), memoryPercentile: slices.Index(order, "3")}
	if !strings.HasPrefix(warm, cold) || len(order) != 6 || st.cpuPercentile < 0 || st.memoryPercentile < 0 || numbers.MatchString(st.warmingUp) {
		panic("policy.Statistic.String has a layout the CEL cannot rebuild: " + warm)
	}
	return st
}

// format rebuilds text (a statistic, with its numbers in the list nums) as String writes it.
func (st statisticText) format(nums, text string) string {
	var b strings.Builder
	for i, l := range st.literals {
		if i > 0 {
			fmt.Fprintf(&b, "string(%s[%d]) + ", nums, i-1)
		}
		if l != "" {
			b.WriteString(lit(l) + " + ")
		}
	}
	fmt.Fprintf(&b, "(%[1]s.endsWith(%[2]s) ? %[2]s : '')", text, lit(st.warmingUp))
	return "(" + b.String() + ")"
}
