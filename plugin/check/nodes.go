package check

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Node is an opted-in node and the non-terminal pods bound to it.
type Node struct {
	Node *corev1.Node
	Pods []kube.PodFacts
}

// NodeConfig is what every node is checked against.
type NodeConfig struct {
	// Mode is the node-policy mode (kube.ModePolicy, kube.ModeWebhook, ...).
	Mode string
	// Autoscaler says a cluster autoscaler runs; ScaleDownUtilization is its scale-down
	// utilization threshold in percent.
	Autoscaler           bool
	ScaleDownUtilization int64
	Now                  time.Time
}

// The per-node checks, in report order, and what a node that passes them has.
var nodeChecks = []struct {
	name string
	run  func(n Node, raw policy.Snapshot, cfg NodeConfig) (Result, bool)
	pass string
}{
	{"records", nil, "the records match what is stored, and the raw allocatable is plausible"},
	{"restart-risk", restartRisk, "a kubelet restart at the raw allocatable would keep every pod"},
	{"pressure", pressure, "no MemoryPressure, DiskPressure or PIDPressure"},
	{"memory-limits", memoryLimits, "memory is not overcommitted, or the pods' memory limits fit the raw memory"},
	{"autoscaler", autoscalerView, "a cluster autoscaler judges them on the same side of its scale-down threshold as at raw allocatable"},
}

// maxPods bounds the pods a result names.
const maxPods = 10

// NodeResults checks every opted-in node. The nodes that pass a check are summed up in one line
// per check, so that 5,000 healthy nodes print five lines; each problem gets its own line.
func NodeResults(nodes []Node, cfg NodeConfig) []Result {
	if len(nodes) == 0 {
		return []Result{ok(SectionNodes, "opted-in", "no node is opted in (label %s=%s): nothing to check", names.EnabledLabel, names.EnabledValue)}
	}
	passed := make([]int, len(nodeChecks))
	problems := make([][]Result, len(nodeChecks))
	for _, n := range nodes {
		raw, rec := records(n, cfg)
		if rec.Status == OK {
			passed[0]++
		} else {
			problems[0] = append(problems[0], rec)
		}
		for i, c := range nodeChecks[1:] {
			if len(raw.Allocatable) == 0 {
				break // without a readable raw record there is nothing to compare with
			}
			if c.name == "autoscaler" && !cfg.Autoscaler {
				continue
			}
			res, applies := c.run(n, raw, cfg)
			switch {
			case !applies:
			case res.Status == OK:
				passed[i+1]++
			default:
				res.Section, res.Check, res.Node = SectionNodes, c.name, n.Node.Name
				problems[i+1] = append(problems[i+1], res)
			}
		}
	}
	var out []Result
	for i, c := range nodeChecks {
		if passed[i] > 0 {
			out = append(out, ok(SectionNodes, c.name, "%d of %s: %s", passed[i], plural(len(nodes), "opted-in node"), c.pass))
		}
		out = append(out, problems[i]...)
	}
	return out
}

// records checks the node policy's records and returns the raw allocatable when it is readable.
// Stored allocatable that differs from the applied record means a status write was stored
// without the node policy: the kubelet's report went in unrewritten, so the raw record may be
// older than it, or someone edited the records.
func records(n Node, cfg NodeConfig) (policy.Snapshot, Result) {
	node := n.Node
	r := Result{Section: SectionNodes, Check: "records", Node: node.Name, Status: OK}
	rawText, hasRaw := node.Annotations[names.RawAnnotation]
	appliedText, hasApplied := node.Annotations[names.AppliedAnnotation]
	notRewritten := "the node policy has not rewritten the node"
	if cfg.Mode == kube.ModeWebhook {
		notRewritten += "; is the webhook reachable? (install checks above)"
	}
	switch {
	case !hasRaw && !hasApplied:
		r.Message = "no " + names.RawAnnotation + " or " + names.AppliedAnnotation + " record yet: " + notRewritten + " since it was opted in"
		return policy.Snapshot{}, r.with(Warn, "the kubelet's next status write is rewritten (it writes at least every 5 minutes); if the records stay missing, see the install checks")
	case !hasRaw || !hasApplied:
		missing := names.RawAnnotation
		if hasRaw {
			missing = names.AppliedAnnotation
		}
		r.Message = "the record " + missing + " is missing while the other is present: edited outside the node policy"
		return policy.Snapshot{}, r.with(Fail, reRecord(node.Name))
	}
	raw, err := policy.ParseRaw(rawText)
	if err != nil {
		r.Message = fmt.Sprintf("the record %s is unreadable (%v): the node policy keeps allocatable as stored until the kubelet reports again", names.RawAnnotation, err)
		return policy.Snapshot{}, r.with(Fail, reRecord(node.Name))
	}
	applied, err := policy.ParseApplied(appliedText)
	if err != nil {
		r.Message = fmt.Sprintf("the record %s is unreadable (%v)", names.AppliedAnnotation, err)
		return raw, r.with(Fail, reRecord(node.Name))
	}
	if name, above := raw.AboveCapacity(); above {
		r.Message = fmt.Sprintf("the record %s claims %s allocatable %s above its capacity %s: no kubelet reports that (forged or edited)",
			names.RawAnnotation, name, cell(raw.Allocatable, name), cell(raw.Capacity, name))
		return policy.Snapshot{}, r.with(Fail, reRecord(node.Name))
	}
	for _, name := range policy.Resources {
		want, ok := applied.Allocatable[name]
		if !ok {
			continue
		}
		got, stored := node.Status.Allocatable[name]
		if !stored || policy.Amount(name, got) != policy.Amount(name, want) {
			r.Message = fmt.Sprintf("stored %s allocatable %s differs from what the node policy last set (%s): a status write was stored without the node policy "+
				"(so %s may be older than the kubelet's last report), or the records were edited", name, cell(node.Status.Allocatable, name), want.String(), names.RawAnnotation)
			fix := "the kubelet's next status write is rewritten once the node policy runs (see the install checks)"
			if cfg.Mode == kube.ModeWebhook {
				fix = "the webhook rewrites the kubelet's next status write once it is reachable (see the install checks); until then a kubelet restart admits pods against this allocatable"
			}
			return raw, r.with(Fail, fix)
		}
	}
	for _, name := range policy.Resources {
		ra, okRA := raw.Allocatable[name]
		rc, okRC := raw.Capacity[name]
		sa, okSA := node.Status.Allocatable[name]
		sc, okSC := node.Status.Capacity[name]
		if !okRA || !okRC || !okSA || !okSC {
			continue
		}
		if reserved, stored := policy.Amount(name, rc)-policy.Amount(name, ra), policy.Amount(name, sc)-policy.Amount(name, sa); reserved != stored {
			r.Message = fmt.Sprintf("the record %s does not belong to what is stored: its %s capacity - allocatable is %s, the node's is %s (the node policy keeps them equal)",
				names.RawAnnotation, name, amount(name, reserved), amount(name, stored))
			return policy.Snapshot{}, r.with(Fail, reRecord(node.Name))
		}
	}
	return raw, r
}

// reRecord is the fix of a record the node policy did not write: a real kubelet reports its own
// allocatable within 10 s while the stored one differs from it, and the node policy then records
// that afresh.
func reRecord(node string) string {
	return "the kubelet's next report of its allocatable replaces the records; if they stay, see who wrote them: kubectl get node " + node + " --show-managed-fields -o yaml"
}

func cell(l corev1.ResourceList, name corev1.ResourceName) string {
	if q, ok := l[name]; ok {
		return q.String()
	}
	return "<none>"
}

// amount prints an amount of a resource (millicores, bytes) as a quantity.
func amount(name corev1.ResourceName, v int64) string {
	q := policy.Quantity(name, v)
	return q.String()
}
