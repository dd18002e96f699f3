// Package savings computes the savings report: per node, the kubelet's raw allocatable, what is
// stored now, what pods request and use, and the extra schedulable capacity overcommit gives.
// It is pure: the command reads the cluster (plugin/kube) and hands the data in.
package savings

import (
	"fmt"
	"math/big"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Kind is the kind of the savings report.
const Kind = "SavingsReport"

// SavingsReport is what `kubectl overcommit savings -o json|yaml` prints.
type SavingsReport struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// UsageAvailable says whether metrics.k8s.io was read; without it no usage is reported.
	UsageAvailable bool `json:"usageAvailable"`
	// UsageUnavailable says why not ("" when UsageAvailable).
	UsageUnavailable string `json:"usageUnavailable,omitempty"`
	// PodUsageUnavailable says why, with --pods, no pod has usage although nodes do (PodMetrics
	// not listed: forbidden, say); "" otherwise.
	PodUsageUnavailable string `json:"podUsageUnavailable,omitempty"`
	// Namespace, when set, says that pods, requests and usage percentages count only that
	// namespace's pods; raw, allocatable, usage and extra are the nodes' own, whoever uses them.
	Namespace string `json:"namespace,omitempty"`
	// Filters say which rows are shown ("cpu extra at least 1"); the total sums only those.
	Filters []string      `json:"filters,omitempty"`
	Nodes   []NodeSavings `json:"nodes"`
	Total   Total         `json:"total"`
}

// EncodedList lets output.Encode write the nodes one at a time: with --pods the report holds a
// row per pod, and encoding the whole document at once holds it several times over.
func (r *SavingsReport) EncodedList() (rest any, field string, n int, elem func(i int) any) {
	without := *r
	without.Nodes = nil
	return &without, "nodes", len(r.Nodes), func(i int) any { return &r.Nodes[i] }
}

// NodeSavings is one node's row.
type NodeSavings struct {
	Name string `json:"name"`
	// Enabled says whether the node is opted in (labelled).
	Enabled bool `json:"enabled"`
	// Policy is the policy the webhook last applied, else the node's annotation, else "static";
	// empty for nodes that are not opted in.
	Policy string `json:"policy,omitempty"`
	// Pods counts the node's non-terminal pods.
	Pods   int     `json:"pods"`
	CPU    Amounts `json:"cpu"`
	Memory Amounts `json:"memory"`
	// UsageStatistic is the statistic the usage policy took as the node's usage at the node
	// policy's last write (its overcommit.dev/applied record); absent for other nodes.
	UsageStatistic *output.Statistic `json:"usageStatistic,omitempty"`
	// Hold names the pressure guard's holds at that write ("memory-pressure", "pid-pressure");
	// absent when none.
	Hold string `json:"hold,omitempty"`
	// PodList holds one entry per counted pod, by namespace and name, with --pods only ("pods"
	// is the count).
	PodList []PodSavings `json:"podList,omitempty"`
}

// PodSavings is one pod's requests and usage (savings --pods).
type PodSavings struct {
	Namespace string     `json:"namespace"`
	Name      string     `json:"name"`
	CPU       PodAmounts `json:"cpu"`
	Memory    PodAmounts `json:"memory"`
}

// PodAmounts describe one resource of one pod.
type PodAmounts struct {
	// Requests is the pod's request, counted like the scheduler.
	Requests resource.Quantity `json:"requests"`
	// Usage is the pod's measured usage from its PodMetrics (the sum of its containers); absent
	// when unknown.
	Usage *resource.Quantity `json:"usage,omitempty"`
	// UsagePercentOfRequests is Usage ÷ Requests in whole percent, rounded half up; absent when
	// usage is unknown or nothing is requested.
	UsagePercentOfRequests *int64 `json:"usagePercentOfRequests,omitempty"`
}

// Amounts describe one resource of one node (or the sum over nodes).
type Amounts struct {
	// Raw is the kubelet's own allocatable: the webhook's overcommit.dev/raw record for an opted-in
	// node, else the stored allocatable.
	Raw resource.Quantity `json:"raw"`
	// Allocatable is what is stored now, what the scheduler sees.
	Allocatable resource.Quantity `json:"allocatable"`
	// Requests sums the non-terminal pods' requests, counted like the scheduler.
	Requests resource.Quantity `json:"requests"`
	// Usage is the measured usage from metrics.k8s.io; absent when unknown. In the total it sums
	// the nodes that have a sample.
	Usage *resource.Quantity `json:"usage,omitempty"`
	// Extra is Allocatable - Raw: the schedulable capacity overcommit adds.
	Extra resource.Quantity `json:"extra"`
	// UsagePercentOfRequests is Usage ÷ Requests in whole percent, rounded half up; absent when
	// usage is unknown or nothing is requested (no ratio to give). In the total it is over the
	// nodes that have a sample, so that unmeasured nodes' requests do not dilute it.
	UsagePercentOfRequests *int64 `json:"usagePercentOfRequests,omitempty"`
}

// Total sums the rows.
type Total struct {
	Nodes        int     `json:"nodes"`
	EnabledNodes int     `json:"enabledNodes"`
	Pods         int     `json:"pods"`
	CPU          Amounts `json:"cpu"`
	Memory       Amounts `json:"memory"`
	// NodesGained is the extra capacity counted in average nodes: total extra ÷ (total raw ÷
	// nodes), i.e. how many of the listed nodes, as they are on average, the overcommit is worth.
	NodesGained Gained `json:"nodesGained"`
	// WithoutLargestEnabled says whether the listed nodes still hold their pods' requests at raw
	// allocatable if the largest opted-in node is lost; absent when no listed node is opted in,
	// and when the requests are one namespace's (the other namespaces' pods need room too, so a
	// namespace's share fitting would not say that the pods fit).
	WithoutLargestEnabled *Loss `json:"withoutLargestEnabled,omitempty"`
}

// Loss weighs losing the opted-in node with the largest raw allocatable, per resource: since
// each resource is weighed on its own, the answer holds whichever single opted-in node is lost.
// It counts resources only, not scheduling constraints (affinity, taints, per-node fit).
type Loss struct {
	CPU    LossFit `json:"cpu"`
	Memory LossFit `json:"memory"`
}

// LossFit is one resource of a Loss.
type LossFit struct {
	// Node is the opted-in node with the most raw allocatable of the resource (the first by
	// name among equals).
	Node string `json:"node"`
	// Remaining is the raw allocatable of all listed nodes but Node.
	Remaining resource.Quantity `json:"remaining"`
	// Requests sums the requests of all listed nodes' pods, Node's included: they would need a
	// place.
	Requests resource.Quantity `json:"requests"`
	// Fits says Remaining >= Requests.
	Fits bool `json:"fits"`
}

// Gained holds NodesGained per resource as decimals with two places ("1.50").
type Gained struct {
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
}

// Input is what Build needs.
type Input struct {
	Nodes []corev1.Node
	// Loads maps node names to their pods' requests (missing: no pods).
	Loads map[string]kube.Load
	// Usage is the NodeMetrics snapshot, or why there is none.
	Usage kube.Usage
	// Namespace is the namespace Loads counts, "" for all.
	Namespace string
	// Filter says which rows to keep; the total sums the rows kept.
	Filter Filter
	// Pods, when not nil, maps node names to their counted pods (kube.LoadsWithPods): each kept
	// node lists them with their usage from PodUsage (savings --pods).
	Pods map[string][]kube.PodLoad
	// PodUsage is the PodMetrics snapshot, or why there is none; read only with Pods.
	PodUsage kube.PodUsage
}

// sums is one resource's integer amounts: millicores or bytes.
type sums struct {
	raw, alloc, requests, usage, extra int64
	// measuredRequests are the requests of the nodes that have a usage sample.
	measuredRequests int64
	hasUsage         bool
}

// Build computes the report, rows in node-name order.
func Build(in Input) *SavingsReport {
	r := &SavingsReport{APIVersion: output.APIVersion, Kind: Kind, UsageAvailable: in.Usage.Unavailable == "",
		UsageUnavailable: in.Usage.Unavailable, PodUsageUnavailable: in.PodUsage.Unavailable, Namespace: in.Namespace, Filters: in.Filter.Descriptions(),
		Nodes: make([]NodeSavings, 0, len(in.Nodes))}
	nodes := append([]corev1.Node(nil), in.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })

	var total [2]sums
	// largest[k] is the opted-in node with the most raw allocatable of policy.Resources[k].
	var largest [2]struct {
		node string
		raw  int64
	}
	for i := range nodes {
		n := &nodes[i]
		row := NodeSavings{Name: n.Name, Enabled: policy.OptedIn(n.Labels)}
		raw := n.Status.Allocatable
		if row.Enabled {
			applied := appliedRecord(n)
			row.Policy = appliedPolicy(n, applied)
			row.UsageStatistic = output.NewStatistic(output.RecordedStatistic(applied))
			row.Hold = applied.Hold
			if rec, ok := rawRecord(n); ok {
				raw = rec
			}
		}
		load := in.Loads[n.Name]
		row.Pods = load.Pods
		var usage corev1.ResourceList
		nu, measured := in.Usage.Nodes[n.Name]
		if r.UsageAvailable && measured {
			usage = nu.Usage
		}
		var amounts [2]sums
		for k, name := range policy.Resources {
			s := sums{alloc: policy.Value(n.Status.Allocatable, name)}
			s.raw = s.alloc
			if q, ok := raw[name]; ok {
				s.raw = policy.Amount(name, q)
			}
			s.requests = load.Requests.Of(name)
			if q, ok := usage[name]; ok {
				s.usage, s.hasUsage = policy.Amount(name, q), true
				s.measuredRequests = s.requests
			}
			s.extra = s.alloc - s.raw
			amounts[k] = s
		}
		if !in.Filter.keeps(amounts) {
			continue
		}
		for k, name := range policy.Resources {
			s := amounts[k]
			a := s.amounts(name)
			if name == corev1.ResourceCPU {
				row.CPU = a
			} else {
				row.Memory = a
			}
			if l := &largest[k]; row.Enabled && (l.node == "" || s.raw > l.raw) {
				l.node, l.raw = n.Name, s.raw
			}
			t := &total[k]
			t.raw += s.raw
			t.alloc += s.alloc
			t.requests += s.requests
			t.extra += s.extra
			if s.hasUsage {
				t.usage += s.usage
				t.measuredRequests += s.requests
			}
			// The total has usage whenever metrics were read, even if no node had a sample.
			t.hasUsage = r.UsageAvailable
		}
		if in.Pods != nil {
			row.PodList = podRows(in.Pods[n.Name], in.PodUsage)
		}
		r.Nodes = append(r.Nodes, row)
		r.Total.Pods += row.Pods
		if row.Enabled {
			r.Total.EnabledNodes++
		}
	}
	r.Total.Nodes = len(r.Nodes)
	r.Total.CPU = total[0].amounts(corev1.ResourceCPU)
	r.Total.Memory = total[1].amounts(corev1.ResourceMemory)
	r.Total.NodesGained = Gained{
		CPU:    nodesGained(total[0].extra, total[0].raw, len(r.Nodes)),
		Memory: nodesGained(total[1].extra, total[1].raw, len(r.Nodes)),
	}
	if r.Total.EnabledNodes > 0 && in.Namespace == "" {
		var fits [2]LossFit
		for k, name := range policy.Resources {
			remaining := total[k].raw - largest[k].raw
			fits[k] = LossFit{Node: largest[k].node, Remaining: policy.Quantity(name, remaining),
				Requests: policy.Quantity(name, total[k].requests), Fits: remaining >= total[k].requests}
		}
		r.Total.WithoutLargestEnabled = &Loss{CPU: fits[0], Memory: fits[1]}
	}
	return r
}

// podRows are a node's pods by namespace and name; a pod without a sample has no usage.
func podRows(pods []kube.PodLoad, usage kube.PodUsage) []PodSavings {
	out := make([]PodSavings, 0, len(pods))
	for _, p := range pods {
		u, measured := usage.Pods[kube.PodKey(p.Namespace, p.Name)]
		out = append(out, PodSavings{Namespace: p.Namespace, Name: p.Name,
			CPU:    podAmounts(corev1.ResourceCPU, p.CPU, u.CPU, measured),
			Memory: podAmounts(corev1.ResourceMemory, p.Memory, u.Memory, measured)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func podAmounts(name corev1.ResourceName, requests, usage int64, measured bool) PodAmounts {
	a := PodAmounts{Requests: policy.Quantity(name, requests)}
	if measured {
		q := policy.Quantity(name, usage)
		a.Usage = &q
		a.UsagePercentOfRequests = percentOf(usage, requests)
	}
	return a
}

func (s sums) amounts(name corev1.ResourceName) Amounts {
	a := Amounts{
		Raw:         policy.Quantity(name, s.raw),
		Allocatable: policy.Quantity(name, s.alloc),
		Requests:    policy.Quantity(name, s.requests),
		Extra:       policy.Quantity(name, s.extra),
	}
	if s.hasUsage {
		u := policy.Quantity(name, s.usage)
		a.Usage = &u
		a.UsagePercentOfRequests = percentOf(s.usage, s.measuredRequests)
	}
	return a
}

// percentOf is part ÷ whole in whole percent, rounded half up; nil when whole is not positive.
// Big integers: bytes summed over thousands of nodes, times 100, can overflow int64.
func percentOf(part, whole int64) *int64 {
	if whole <= 0 {
		return nil
	}
	num := new(big.Int).Mul(big.NewInt(part), big.NewInt(200))
	w := big.NewInt(whole)
	num.Add(num, w)
	p := num.Div(num, w.Mul(w, big.NewInt(2))).Int64()
	return &p
}

// nodesGained is extra ÷ (raw ÷ nodes) to two decimal places, rounded half away from zero.
// Big integers: bytes times thousands of nodes overflow int64.
func nodesGained(extra, raw int64, nodes int) string {
	if raw <= 0 || nodes == 0 {
		return "0.00"
	}
	num := new(big.Int).Mul(big.NewInt(extra), big.NewInt(int64(nodes)))
	return new(big.Rat).SetFrac(num, big.NewInt(raw)).FloatString(2)
}

func rawRecord(n *corev1.Node) (corev1.ResourceList, bool) {
	s, ok := n.Annotations[names.RawAnnotation]
	if !ok {
		return nil, false
	}
	raw, err := policy.ParseRaw(s)
	if err != nil || len(raw.Allocatable) == 0 {
		return nil, false
	}
	return raw.Allocatable, true
}

// appliedRecord is n's overcommit.dev/applied record, empty when it has none or it is
// unreadable.
func appliedRecord(n *corev1.Node) policy.Applied {
	if s, ok := n.Annotations[names.AppliedAnnotation]; ok {
		if a, err := policy.ParseApplied(s); err == nil {
			return a
		}
	}
	return policy.Applied{}
}

func appliedPolicy(n *corev1.Node, applied policy.Applied) string {
	if applied.Policy != "" {
		return applied.Policy
	}
	// Only a policy the webhook knows is printed: the annotation is anyone's text (the policy
	// reads anything else as static), and a report is printed to a terminal.
	p, _ := policy.ForNode(n.Annotations)
	return p
}

// SortKeys are the values of --sort-by. Amounts sort largest first, names A to Z; ties keep
// name order.
var SortKeys = []string{"name", "cpu-extra", "memory-extra", "cpu-requests", "memory-requests", "cpu-usage", "memory-usage", "pods"}

// ValidateSortKey checks a --sort-by value; the error says what it must be (the command names
// the flag).
func ValidateSortKey(key string) error {
	for _, k := range SortKeys {
		if k == key {
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(SortKeys, ", "))
}

// Sort orders the rows by key (see SortKeys).
func (r *SavingsReport) Sort(key string) error {
	if err := ValidateSortKey(key); err != nil {
		return err
	}
	metric := func(n *NodeSavings) int64 {
		switch key {
		case "cpu-extra":
			return n.CPU.Extra.MilliValue()
		case "memory-extra":
			return n.Memory.Extra.Value()
		case "cpu-requests":
			return n.CPU.Requests.MilliValue()
		case "memory-requests":
			return n.Memory.Requests.Value()
		case "cpu-usage":
			return usageValue(n.CPU.Usage, true)
		case "memory-usage":
			return usageValue(n.Memory.Usage, false)
		case "pods":
			return int64(n.Pods)
		}
		return 0
	}
	sort.SliceStable(r.Nodes, func(i, j int) bool {
		a, b := &r.Nodes[i], &r.Nodes[j]
		if key != "name" {
			if ma, mb := metric(a), metric(b); ma != mb {
				return ma > mb
			}
		}
		return a.Name < b.Name
	})
	return nil
}

// usageValue sorts unknown usage last.
func usageValue(q *resource.Quantity, milli bool) int64 {
	if q == nil {
		return -1
	}
	if milli {
		return q.MilliValue()
	}
	return q.Value()
}
