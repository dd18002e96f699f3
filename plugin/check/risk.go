package check

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Rejected is a pod the kubelet would refuse, and why in the kubelet's words.
type Rejected struct {
	Pod    string
	Reason string
}

// KubeletAdmission replays what a restarted kubelet does with the pods bound to its node: it
// admits them oldest first (by creation time), each against the allocatable minus what the pods
// admitted before it request, and rejects a pod that does not fit (OutOfcpu, OutOfmemory,
// OutOfpods). allocatable holds the amounts the node would carry (millicores, bytes, pods); a
// resource it lacks is not limited.
func KubeletAdmission(pods []kube.PodFacts, allocatable map[corev1.ResourceName]int64) []Rejected {
	order := slices.Clone(pods)
	slices.SortStableFunc(order, func(a, b kube.PodFacts) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var used struct{ cpu, memory, pods int64 }
	var out []Rejected
	over := func(name corev1.ResourceName, total int64) bool {
		limit, ok := allocatable[name]
		return ok && total > limit
	}
	for _, p := range order {
		var why []string
		if over(corev1.ResourcePods, used.pods+1) {
			why = append(why, "OutOfpods")
		}
		if p.CPU > 0 && over(corev1.ResourceCPU, used.cpu+p.CPU) {
			why = append(why, "OutOfcpu")
		}
		if p.Memory > 0 && over(corev1.ResourceMemory, used.memory+p.Memory) {
			why = append(why, "OutOfmemory")
		}
		if len(why) > 0 {
			out = append(out, Rejected{Pod: p.Namespace + "/" + p.Name, Reason: strings.Join(why, ",")})
			continue
		}
		used.cpu, used.memory, used.pods = used.cpu+p.CPU, used.memory+p.Memory, used.pods+1
	}
	return out
}

// restartRisk: the pods a kubelet restart would reject if the node came back at its raw
// allocatable. In webhook mode that is what a webhook outage during the restart does (the
// kubelet's write goes in unrewritten, and it admits against it); in policy mode only a deleted
// policy or a failing CEL would let it, so it is a warning there.
func restartRisk(n Node, raw policy.Snapshot, cfg NodeConfig) (Result, bool) {
	alloc := map[corev1.ResourceName]int64{}
	for _, name := range policy.Resources {
		if q, ok := raw.Allocatable[name]; ok {
			alloc[name] = policy.Amount(name, q)
		}
	}
	if q, ok := n.Node.Status.Allocatable[corev1.ResourcePods]; ok {
		alloc[corev1.ResourcePods] = q.Value()
	}
	rejected := KubeletAdmission(n.Pods, alloc)
	if len(rejected) == 0 {
		return Result{Status: OK}, true
	}
	pods := make([]string, 0, min(len(rejected), maxPods))
	for _, r := range rejected[:min(len(rejected), maxPods)] {
		pods = append(pods, r.Pod+" ("+r.Reason+")")
	}
	var req struct{ cpu, memory int64 }
	for _, p := range n.Pods {
		req.cpu, req.memory = req.cpu+p.CPU, req.memory+p.Memory
	}
	r := Result{Pods: pods, Message: fmt.Sprintf(
		"a kubelet restart at the raw allocatable (cpu %s, memory %s) would reject %d of %s, oldest admitted first like the kubelet; the pods request cpu %s, memory %s",
		cell(raw.Allocatable, corev1.ResourceCPU), cell(raw.Allocatable, corev1.ResourceMemory), len(rejected), plural(len(n.Pods), "pod"),
		amount(corev1.ResourceCPU, req.cpu), amount(corev1.ResourceMemory, req.memory))}
	if cfg.Mode == kube.ModePolicy {
		r.Message += "; policy mode keeps the overcommitted allocatable through restarts unless the policy is deleted or fails"
		return r.with(Warn, "lower the node's ratio until its pods fit the raw allocatable if even that must not happen"), true
	}
	r.Message += "; in webhook mode a webhook outage during the restart does this"
	return r.with(Fail, "move to policy mode where the cluster serves it (kubectl overcommit install --mode policy), "+
		"keep the webhook available through kubelet restarts (two replicas and the PodDisruptionBudget of the install), or lower the node's ratio until its pods fit"), true
}

// pressure reports the node's pressure conditions: the pods use more than the node has, which on
// an overcommitted node is the risk overcommit takes.
func pressure(n Node, _ policy.Snapshot, cfg NodeConfig) (Result, bool) {
	var found []string
	for _, c := range n.Node.Status.Conditions {
		switch c.Type {
		case corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure:
			if c.Status == corev1.ConditionTrue {
				since := ""
				if !c.LastTransitionTime.IsZero() {
					since = " for " + cfg.Now.Sub(c.LastTransitionTime.Time).Round(1e9).String()
				}
				found = append(found, string(c.Type)+since)
			}
		}
	}
	if len(found) == 0 {
		return Result{Status: OK}, true
	}
	applied, _ := policy.ParseApplied(n.Node.Annotations[names.AppliedAnnotation])
	held := "the pressure guard holds allocatable at what the pods request on the node policy's next write"
	if applied.Hold != "" {
		held = "the pressure guard holds allocatable (" + applied.Hold + ")"
	}
	r := Result{Message: strings.Join(found, ", ") + ": " + held + ", and the kubelet may evict pods"}
	return r.with(Warn, "the node's pods use more than it has: lower its ratios (kubectl overcommit enable "+n.Node.Name+" --memory-ratio 1) or move pods off it"), true
}

// memoryLimits: memory cannot be throttled, so on a node whose stored memory exceeds the raw
// memory, pods whose limits add up to more than the raw memory (or that have none) can run the
// node out of memory, and the kernel, not the scheduler, picks what dies.
func memoryLimits(n Node, raw policy.Snapshot, _ NodeConfig) (Result, bool) {
	rawMem, ok := raw.Allocatable[corev1.ResourceMemory]
	stored, ok2 := n.Node.Status.Allocatable[corev1.ResourceMemory]
	if !ok || !ok2 || stored.Cmp(rawMem) <= 0 {
		return Result{Status: OK}, true
	}
	var limits int64
	var unbounded []string
	for _, p := range n.Pods {
		if p.NoMemoryLimit {
			unbounded = append(unbounded, p.Namespace+"/"+p.Name)
			continue
		}
		limits += p.MemoryLimit
	}
	if len(unbounded) == 0 && limits <= policy.Amount(corev1.ResourceMemory, rawMem) {
		return Result{Status: OK}, true
	}
	msg := fmt.Sprintf("memory is overcommitted (stored %s, raw %s) and the pods may use more than the raw memory: their memory limits add up to %s",
		stored.String(), rawMem.String(), amount(corev1.ResourceMemory, limits))
	switch len(unbounded) {
	case 0:
	case 1:
		msg += ", and 1 pod has no memory limit"
	default:
		msg += fmt.Sprintf(", and %d pods have no memory limit", len(unbounded))
	}
	r := Result{Message: msg + ": under memory pressure the kernel's OOM killer, not the scheduler, decides", Pods: unbounded[:min(len(unbounded), maxPods)]}
	return r.with(Warn, "set memory limits on the node's pods, or opt its memory out (kubectl overcommit enable "+n.Node.Name+" --memory-ratio 1)"), true
}

// autoscalerScaleDownDisabled is the cluster autoscaler's per-node opt-out of scale-down.
const autoscalerScaleDownDisabled = "cluster-autoscaler.kubernetes.io/scale-down-disabled"

// autoscalerView: the cluster autoscaler's scale-down judges a node by its utilization, the larger
// of cpu and memory requests over the node's stored allocatable. An inflated allocatable can put
// a node below the threshold that at its raw allocatable is above it: the autoscaler then drains
// it, counting on room elsewhere that exists only through overcommit.
func autoscalerView(n Node, raw policy.Snapshot, cfg NodeConfig) (Result, bool) {
	if n.Node.Annotations[autoscalerScaleDownDisabled] == "true" {
		return Result{Status: OK}, true
	}
	var req struct{ cpu, memory int64 }
	for _, p := range n.Pods {
		req.cpu, req.memory = req.cpu+p.CPU, req.memory+p.Memory
	}
	util := func(l corev1.ResourceList) int64 {
		var u int64
		for _, name := range policy.Resources {
			q, ok := l[name]
			if a := policy.Amount(name, q); ok && a > 0 {
				r := req.cpu
				if name == corev1.ResourceMemory {
					r = req.memory
				}
				u = max(u, percent(r, a))
			}
		}
		return u
	}
	stored, atRaw := util(n.Node.Status.Allocatable), util(raw.Allocatable)
	if stored >= cfg.ScaleDownUtilization || atRaw < cfg.ScaleDownUtilization {
		return Result{Status: OK}, true
	}
	r := Result{Message: fmt.Sprintf("a cluster autoscaler sees it %d%% utilized (requests over the stored allocatable), below its scale-down threshold of %d%%, "+
		"and may remove it; at the raw allocatable it is %d%% utilized", stored, cfg.ScaleDownUtilization, atRaw)}
	return r.with(Warn, "its pods would need the other nodes' overcommitted room: annotate the node "+autoscalerScaleDownDisabled+"=true, or lower the autoscaler's --scale-down-utilization-threshold"), true
}

// percent is part/whole in whole percent, rounded down (the threshold is a bound).
func percent(part, whole int64) int64 {
	if whole <= 0 {
		return 0
	}
	return int64(float64(part) / float64(whole) * 100)
}
