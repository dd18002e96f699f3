package fit

import (
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/plugin/workload"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

// Kinds of the reports.
const (
	KindPending  = "PendingFit"
	KindReplicas = "ReplicaFit"
)

// Estimate is what every report says of itself: how it counts, and what it leaves out.
const Estimate = "Estimate: resources only (cpu, memory and pod count against allocatable minus the requests of the pods bound there, " +
	"counted like the scheduler); nodeSelector, affinity, taints and other scheduling rules are not evaluated."

// PendingOrder says how Place orders the pending pods, for the report.
const PendingOrder = "Pending pods placed greedily, oldest first, each on the first node by name where it fits."

// Pending is the report of `preview --pending`: where each Pending pod would fit on the
// previewed nodes, now and after the change.
type Pending struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Nodes      []string     `json:"nodes"`
	Pods       []PendingPod `json:"pods"`
	FitNow     int          `json:"fitNow"`
	FitAfter   int          `json:"fitAfter"`
	Notes      []string     `json:"notes"`
}

// PendingPod is one Pending pod and the node it would land on ("" when none).
type PendingPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	CPU       string `json:"cpu"`
	Memory    string `json:"memory"`
	Now       string `json:"now,omitempty"`
	After     string `json:"after,omitempty"`
}

// NewPending places pods on the nodes as they are (now) and as the change stores them (after).
func NewPending(now, after []Node, pods []Pod) *Pending {
	r := &Pending{APIVersion: output.APIVersion, Kind: KindPending, Nodes: []string{}, Pods: make([]PendingPod, len(pods)),
		Notes: []string{Estimate, PendingOrder}}
	for _, n := range now {
		r.Nodes = append(r.Nodes, n.Name)
	}
	placedNow, placedAfter := Place(now, pods), Place(after, pods)
	for i, p := range pods {
		r.Pods[i] = PendingPod{Namespace: p.Namespace, Name: p.Name, CPU: cpu(p.Requests), Memory: memory(p.Requests),
			Now: placedNow[i], After: placedAfter[i]}
		if placedNow[i] != "" {
			r.FitNow++
		}
		if placedAfter[i] != "" {
			r.FitAfter++
		}
	}
	return r
}

// WriteTable prints one row per pod, then the counts and the notes.
func (r *Pending) WriteTable(w io.Writer) error {
	rows := make([][]string, 0, len(r.Pods))
	for _, p := range r.Pods {
		rows = append(rows, []string{p.Namespace, p.Name, p.CPU, p.Memory, orNone(p.Now), orNone(p.After)})
	}
	if len(rows) > 0 {
		if err := output.Table(w, []string{"NAMESPACE", "POD", "CPU", "MEMORY", "FITS NOW ON", "FITS AFTER ON"}, rows, nil); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d of %d Pending pods would fit on the %d previewed nodes after the change (%d now).\n%s\n",
		r.FitAfter, len(r.Pods), len(r.Nodes), r.FitNow, strings.Join(r.Notes, "\n"))
	return err
}

// Replicas is the report of `preview --fit -f`: how many more replicas of a pod spec fit on
// each previewed node, now and after the change.
type Replicas struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Source     string         `json:"source"`
	CPU        string         `json:"cpu"`
	Memory     string         `json:"memory"`
	Nodes      []NodeReplicas `json:"nodes"`
	Now        int64          `json:"now"`
	After      int64          `json:"after"`
	Notes      []string       `json:"notes"`
}

// NodeReplicas is one node's count.
type NodeReplicas struct {
	Node  string `json:"node"`
	Now   int64  `json:"now"`
	After int64  `json:"after"`
}

// NewReplicas counts the replicas of a pod requesting req that fit each node; now and after
// are the same nodes, in the same order.
func NewReplicas(source string, req requests.Amount, now, after []Node) *Replicas {
	r := &Replicas{APIVersion: output.APIVersion, Kind: KindReplicas, Source: source, CPU: cpu(req), Memory: memory(req),
		Nodes: make([]NodeReplicas, len(now)), Notes: []string{Estimate}}
	for i := range now {
		r.Nodes[i] = NodeReplicas{Node: now[i].Name, Now: Count(now[i], req), After: Count(after[i], req)}
		r.Now += r.Nodes[i].Now
		r.After += r.Nodes[i].After
	}
	return r
}

// WriteTable prints one row per node and a total.
func (r *Replicas) WriteTable(w io.Writer) error {
	rows := make([][]string, 0, len(r.Nodes))
	for _, n := range r.Nodes {
		rows = append(rows, []string{n.Node, fmt.Sprint(n.Now), fmt.Sprint(n.After)})
	}
	if _, err := fmt.Fprintf(w, "Replicas of %s (requests cpu %s, memory %s) that fit:\n", r.Source, r.CPU, r.Memory); err != nil {
		return err
	}
	if err := output.Table(w, []string{"NODE", "NOW", "AFTER"}, rows, []string{"TOTAL", fmt.Sprint(r.Now), fmt.Sprint(r.After)}); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, strings.Join(r.Notes, "\n"))
	return err
}

// PodOf returns the pod that obj makes, for counting its requests, and a name for it
// ("deployment/web"): a Pod itself, or the pod template of a Deployment, StatefulSet, DaemonSet,
// ReplicaSet, Job or CronJob.
func PodOf(obj runtime.Object) (*corev1.Pod, string, error) {
	if o, ok := obj.(*corev1.Pod); ok {
		return o, "pod/" + o.Name, nil
	}
	if o, ok := obj.(*corev1.PodTemplate); ok {
		return &corev1.Pod{ObjectMeta: o.Template.ObjectMeta, Spec: o.Template.Spec}, workload.Name(obj), nil
	}
	meta, spec, name, ok := workload.PodParts(obj)
	if !ok {
		return nil, "", fmt.Errorf("a %s has no pod spec: want a Pod or a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or PodTemplate",
			obj.GetObjectKind().GroupVersionKind().Kind)
	}
	return &corev1.Pod{ObjectMeta: *meta, Spec: *spec}, name, nil
}

// NodeOf is n's room, given the load of its pods.
func NodeOf(n *corev1.Node, used requests.Amount, usedPods int) Node {
	a := n.Status.Allocatable
	return Node{Name: n.Name, Allocatable: requests.Amount{MilliCPU: a.Cpu().MilliValue(), Memory: a.Memory().Value()},
		Pods: a.Pods().Value(), Used: used, UsedPods: int64(usedPods)}
}

func cpu(a requests.Amount) string {
	return resource.NewMilliQuantity(a.MilliCPU, resource.DecimalSI).String()
}
func memory(a requests.Amount) string {
	return resource.NewQuantity(a.Memory, resource.BinarySI).String()
}

func orNone(s string) string {
	if s == "" {
		return output.None
	}
	return s
}
