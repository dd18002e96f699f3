// Package policy computes the allocatable and capacity the webhook stores for an opted-in node.
// It is pure: no I/O, no clock, no globals. The webhook and the plugin's preview call the same
// Compute, so a preview can never disagree with the webhook.
package policy

import (
	"fmt"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// Node is what the policy reads of a Node: its identity, metadata and status as they arrive.
type Node struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Allocatable corev1.ResourceList
	Capacity    corev1.ResourceList
	// Heartbeat is the newest lastHeartbeatTime of the node's conditions as written (see
	// Heartbeat): the clock a published usage target's age is judged by.
	Heartbeat time.Time
	// MemoryPressure and PIDPressure are the conditions the pressure guard reads (pressure.go).
	MemoryPressure, PIDPressure Condition
}

// NodeFrom is what the policy reads of n.
func NodeFrom(n *corev1.Node) Node {
	mem, pid := Conditions(n.Status.Conditions)
	return Node{Name: n.Name, Labels: n.Labels, Annotations: n.Annotations,
		Allocatable: n.Status.Allocatable, Capacity: n.Status.Capacity, Heartbeat: Heartbeat(n.Status.Conditions),
		MemoryPressure: mem, PIDPressure: pid}
}

// UsageSample is the input of the usage policy for one node.
type UsageSample struct {
	// Requests is R: the summed requests of the node's non-terminal pods, counted like the scheduler.
	Requests corev1.ResourceList
	// Usage is U: measured usage (metrics.k8s.io), the values of Statistic when it is set. Nil
	// when the node has no sample.
	Usage corev1.ResourceList
	// Timestamp is when Usage was measured: the newest sample of the window.
	Timestamp time.Time
	// Statistic says how Usage was drawn from the node's window of samples; nil for one sample.
	Statistic *Statistic
}

// Input is everything Compute needs.
type Input struct {
	Node Node
	// Writer is the username of whoever writes the node (request.userInfo.username).
	Writer string
	// Update is true when the write replaces a stored node (an UPDATE, with an oldObject), and
	// OldAllocatable is then the allocatable stored before it.
	Update         bool
	OldAllocatable corev1.ResourceList
	// Usage is the live sample (webhook mode). When nil, the usage policy reads the node's
	// published target (names.UsageTargetAnnotation), as policy mode does, or falls back.
	Usage *UsageSample
	// UsageUnavailable says why Usage is nil, for the warning ("pod cache not synced").
	UsageUnavailable string
	// Requests are the summed requests of the node's pods, which the pressure guard holds
	// allocatable at (webhook mode: the pod cache). When nil, the guard reads the node's
	// published record (names.RequestsAnnotation), as policy mode does.
	Requests corev1.ResourceList
	// Now is the time to judge the age of the usage sample against.
	Now time.Time
}

// Result is what the webhook stores.
type Result struct {
	// Allocatable and Capacity are the full new lists; only cpu and memory ever differ from the input.
	Allocatable corev1.ResourceList
	Capacity    corev1.ResourceList
	// Raw is the kubelet's own view the result was computed from (stored in names.RawAnnotation).
	Raw Snapshot
	// Applied is what was set (stored in names.AppliedAnnotation).
	Applied Applied
	// RawRecord and AppliedRecord are the two annotations to store, spelled exactly as the CEL of
	// policy mode spells them (see records.go); empty when nothing was computed.
	RawRecord, AppliedRecord string
	// Reason says in one line how the result came about.
	Reason string
	// Warnings are problems the caller should surface (admission warnings, plugin output).
	Warnings []string
	// Fallback is true when the usage policy could not trust its inputs and kept the raw values.
	Fallback bool
	// Keep is true when the input must be stored as it arrived (our own output came back without a
	// readable raw record); Allocatable and Capacity then equal the input.
	Keep bool
}

// Snapshot is the cpu and memory part of a node's allocatable and capacity.
type Snapshot struct {
	Allocatable corev1.ResourceList `json:"allocatable"`
	Capacity    corev1.ResourceList `json:"capacity,omitempty"`
}

// Applied records what the webhook set and why, as stored in names.AppliedAnnotation.
type Applied struct {
	Policy      string `json:"policy"`
	CPURatio    string `json:"cpuRatio"`
	MemoryRatio string `json:"memoryRatio"`
	// Usage is the statistic the usage policy used (Statistic.String), when it used one.
	Usage string `json:"usage,omitempty"`
	// Hold names the pressure guard's holds (HoldMemory, HoldPID, comma-separated), if any.
	Hold     string `json:"hold,omitempty"`
	Snapshot `json:",inline"`
}

// Resources are the only resources overcommit ever changes.
var Resources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

// OptedIn reports whether a node carries the opt-in label.
func OptedIn(labels map[string]string) bool {
	return labels[names.EnabledLabel] == names.EnabledValue
}

// ForNode is the policy applied to a node with these annotations: names.PolicyAnnotation when it
// is exactly names.PolicyStatic or names.PolicyUsage, else static. known is false when the
// annotation holds anything else ("Usage" included): Compute then warns. An unknown value means
// static because that is what the webhook and the CEL of policy mode store, and the ratios of
// static are what the operator asked for; the plugin reports and previews through this too, so
// it never promises a policy the node will not get.
func ForNode(annotations map[string]string) (name string, known bool) {
	switch v, ok := annotations[names.PolicyAnnotation]; {
	case !ok || v == "" || v == names.PolicyStatic:
		return names.PolicyStatic, true
	case v == names.PolicyUsage:
		return names.PolicyUsage, true
	}
	return names.PolicyStatic, false
}

// Compute returns what the webhook stores for an opted-in node. It never fails: every problem
// becomes a warning and a safe result (no overcommit for the resource concerned).
func Compute(in Input, s Settings) Result {
	var res Result
	ann := in.Node.Annotations

	pol, known := ForNode(ann)
	if !known {
		res.warnf("unknown %s %q, using %q", names.PolicyAnnotation, clip(ann[names.PolicyAnnotation]), names.PolicyStatic)
	}
	cpuRatio := res.ratio(ann, names.CPURatioAnnotation, s.CPU)
	memRatio := res.ratio(ann, names.MemoryRatioAnnotation, s.Memory)

	base, rawRecord, ok := res.base(in)
	if !ok {
		res.Keep = true
		res.Allocatable = in.Node.Allocatable
		res.Capacity = in.Node.Capacity
		res.Reason = "kept as stored: no readable raw record"
		return res
	}

	res.Allocatable = overlay(in.Node.Allocatable, nil)
	res.Capacity = overlay(in.Node.Capacity, nil)
	res.Raw = base
	res.Applied = Applied{Policy: pol, CPURatio: cpuRatio.String(), MemoryRatio: memRatio.String(),
		Snapshot: Snapshot{Allocatable: corev1.ResourceList{}, Capacity: corev1.ResourceList{}}}

	var target UsageTarget
	var warmingUp bool
	if pol == names.PolicyUsage {
		var stat *Statistic
		target, stat = res.usage(in, s, base)
		if stat != nil && target != nil {
			res.Applied.Usage = stat.String()
			if warmingUp = stat.WarmingUp; warmingUp {
				res.warnf("usage policy: the usage window covers only %s (warming up since the webhook started); allocatable held at the pods' requests", stat.Window)
			}
		}
	}
	held, holdWhy := holds(in)
	var requested map[corev1.ResourceName]int64
	var requestsKnown bool
	if held.any() {
		res.Applied.Hold = holdWhy
		requested, requestsKnown = res.requests(in, s)
	}
	computed := map[corev1.ResourceName]string{}
	computedCap := map[corev1.ResourceName]string{}
	for _, name := range Resources {
		// Only entries the write carries change: records (which anyone who may edit the node's
		// metadata can write) never add a resource to a list.
		a, ok := base.Allocatable[name]
		if _, carried := in.Node.Allocatable[name]; !ok || !carried {
			continue
		}
		raw, err := amount(name, a)
		var rawCap int64
		c, hasCap := base.Capacity[name]
		if _, carried := in.Node.Capacity[name]; !carried {
			hasCap = false
		}
		if err == nil && hasCap {
			rawCap, err = amount(name, c)
		}
		if err != nil {
			res.warnf("%v; leaving %s unchanged", err, name)
			continue
		}
		r := cpuRatio
		if name == corev1.ResourceMemory {
			r = memRatio
		}
		// Validated settings keep every ratio in [1, MaxRatio], and so every result in
		// [raw, MaxRatio x raw] and in int64; a ratio outside (from settings nobody validated)
		// could make the resource smaller, zero, or overflow its capacity.
		if r < One || r > MaxRatio {
			res.warnf("%s ratio %s is outside [1, %s]; leaving %s unchanged", name, r, MaxRatio, name)
			continue
		}
		next := mulFloor(raw, r)
		if pol == names.PolicyUsage {
			next = usageTarget(name, raw, next, target)
		}
		if held.of(name) {
			was := next
			next = hold(raw, next, requested[name], requestsKnown)
			if next != was {
				held, would := Quantity(name, next), Quantity(name, was)
				res.warnf("pressure guard (%s): %s held at %s instead of %s until the node has been clear for %s",
					holdWhy, name, held.String(), would.String(), PressureCooldown)
			}
		}
		res.Allocatable[name] = Quantity(name, next)
		computed[name] = spell(name, next)
		if hasCap {
			res.Capacity[name] = Quantity(name, rawCap+(next-raw))
			computedCap[name] = spell(name, rawCap+(next-raw))
		}
	}
	// The record holds what is stored for both resources, changed or not, so that the next write
	// recognises the whole of our output.
	for _, name := range Resources {
		if q, ok := res.Allocatable[name]; ok {
			res.Applied.Allocatable[name] = q
		}
		if q, ok := res.Capacity[name]; ok {
			res.Applied.Capacity[name] = q
		}
	}
	if len(res.Applied.Allocatable) > 0 {
		if rawRecord == "" {
			rawRecord = rawRecordOf(base)
		}
		res.RawRecord = rawRecord
		res.AppliedRecord = appliedRecordOf(res.Applied, computed, computedCap)
	}
	res.Reason = reason(pol, cpuRatio, memRatio, res.Fallback, warmingUp)
	return res
}

// ratio resolves one resource's ratio from a node annotation: missing means the default, an
// unparsable value means no overcommit, and anything outside [1, max] is clamped.
func (res *Result) ratio(ann map[string]string, key string, l Limits) Ratio {
	s, ok := ann[key]
	if !ok {
		return l.Default
	}
	r, err := ParseRatio(s)
	switch {
	case err != nil:
		res.warnf("invalid %s %q (%v), using 1", key, clip(s), err)
		return One
	case r < One:
		res.warnf("%s %q is below 1, using 1", key, clip(s))
		return One
	case r > l.Max:
		res.warnf("%s %q is above the maximum %s, using %s", key, clip(s), l.Max, l.Max)
		return l.Max
	}
	return r
}

// base applies the never-compound rule. The incoming allocatable is the kubelet's new raw value
// when the node's own kubelet changes it; otherwise, when it is our own earlier output (it equals
// the applied record), the raw record is the base. Whether the writer is the kubelet does not
// decide it alone: a kubelet's status patch is a diff against its cached copy of the node, so it
// may leave our output in place under the kubelet's name. A missing or unreadable applied record
// next to a raw record cannot prove the incoming value is not ours, so raw is the base then too.
// When the base is the raw record, its text is returned too: it is stored again unchanged.
func (res *Result) base(in Input) (Snapshot, string, bool) {
	incoming := snapshot(in.Node.Allocatable, in.Node.Capacity)
	kubelet := in.Writer == names.KubeletUser(in.Node.Name)
	unchanged := in.Update && sameResources(incoming.Allocatable, in.OldAllocatable)
	if kubelet && !unchanged {
		return incoming, "", true
	}
	rawJSON, hasRaw := in.Node.Annotations[names.RawAnnotation]
	appliedJSON, hasApplied := in.Node.Annotations[names.AppliedAnnotation]
	switch {
	case !hasApplied && !hasRaw:
		return incoming, "", true
	case !hasApplied:
		res.warnf("%s is missing; starting from %s", names.AppliedAnnotation, names.RawAnnotation)
	default:
		applied, err := ParseApplied(appliedJSON)
		if err != nil {
			if !hasRaw {
				res.warnf("ignoring unreadable %s: %v", names.AppliedAnnotation, err)
				return incoming, "", true
			}
			res.warnf("%s is unreadable (%v); starting from %s", names.AppliedAnnotation, err, names.RawAnnotation)
		} else if !sameResources(incoming.Allocatable, applied.Allocatable) {
			return incoming, "", true
		}
	}
	if !hasRaw {
		res.warnf("allocatable equals our last output but %s is missing; leaving it as is", names.RawAnnotation)
		return Snapshot{}, "", false
	}
	raw, err := ParseRaw(rawJSON)
	if err != nil {
		res.warnf("allocatable may be our last output but %s is unreadable (%v); leaving it as is", names.RawAnnotation, err)
		return Snapshot{}, "", false
	}
	return raw, rawJSON, true
}

// usage returns what the usage policy may reclaim: from the live sample when there is one and
// it is fresh, else from the node's published target; nil (with a fallback) when neither can be
// trusted.
// While the sample's window is warming up, the target is WarmupTarget, from the same raw
// allocatable (base) the result is computed from; a published target is already one.
func (res *Result) usage(in Input, s Settings, base Snapshot) (UsageTarget, *Statistic) {
	if in.Usage == nil {
		return res.publishedTarget(in, s)
	}
	if in.Usage.Usage == nil {
		res.fallback("usage policy: no metrics for node %s; no overcommit", in.Node.Name)
		return nil, nil
	}
	if age := in.Now.Sub(in.Usage.Timestamp); age > s.MaxMetricsAge {
		res.fallback("usage policy: metrics for node %s are %s old (max %s); no overcommit",
			in.Node.Name, age.Round(time.Second), s.MaxMetricsAge)
		return nil, nil
	}
	if st := in.Usage.Statistic; st != nil && st.WarmingUp {
		return WarmupTarget(in.Usage.Requests, RawAmounts(base.Allocatable)), st
	}
	t, problems := TargetFromSample(*in.Usage, s.UsageMargin)
	for _, p := range problems {
		res.fallback("usage policy: %v", p)
	}
	return t, in.Usage.Statistic
}

// RawAmounts is a raw allocatable's cpu and memory in the policy's amounts, leaving out any that
// is not exact (Compute leaves those unchanged).
func RawAmounts(l corev1.ResourceList) map[corev1.ResourceName]int64 {
	out := map[corev1.ResourceName]int64{}
	for _, name := range Resources {
		if q, ok := l[name]; ok {
			if a, err := amount(name, q); err == nil {
				out[name] = a
			}
		}
	}
	return out
}

// usageTarget is A' = clamp(A + reclaim, A, ceiling) for one resource; A without a target.
func usageTarget(name corev1.ResourceName, raw, ceiling int64, t UsageTarget) int64 {
	r, ok := t[name]
	if !ok {
		return raw
	}
	return max(raw, min(raw+r, ceiling))
}

// maxQuoted bounds how much of an annotation's value a warning repeats: warnings go into
// admission responses, logs and the plugin's output, and an annotation may be long.
const maxQuoted = 64

// clip is s for a warning: at most maxQuoted bytes of it, cut on a character boundary.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("... (%d bytes)", len(s))
}

func (res *Result) fallback(format string, args ...any) {
	res.Fallback = true
	res.warnf(format, args...)
}

func (res *Result) warnf(format string, args ...any) {
	res.Warnings = append(res.Warnings, fmt.Sprintf(format, args...))
}

func reason(pol string, cpu, mem Ratio, fellBack, warmingUp bool) string {
	switch {
	case fellBack:
		return fmt.Sprintf("%s policy fell back to raw where inputs were missing (cpu up to x%s, memory up to x%s)", pol, cpu, mem)
	case warmingUp:
		return fmt.Sprintf("usage policy: warming up, held at the pods' requests (cpu up to x%s, memory up to x%s)", cpu, mem)
	}
	if pol == names.PolicyUsage {
		return fmt.Sprintf("usage policy: unused requests reclaimed (cpu up to x%s, memory up to x%s)", cpu, mem)
	}
	return fmt.Sprintf("static policy: cpu x%s, memory x%s", cpu, mem)
}
