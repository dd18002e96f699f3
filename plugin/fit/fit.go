// Package fit estimates which pods fit on nodes by resources alone, as the scheduler's
// NodeResourcesFit filter counts them: a pod fits a node when each resource it requests is at
// most the node's allocatable minus the requests of the pods already there, and the node has
// room for one more pod. Scheduling rules (nodeSelector, affinity, taints, topology spread, ports,
// volumes) are not evaluated, so the answers are an upper bound.
package fit

import (
	"cmp"
	"slices"
	"time"

	"github.com/overcommit-dev/overcommit/shared/requests"
)

// Node is one node's room: its allocatable and what the pods bound to it already take.
type Node struct {
	Name string
	// Allocatable is the node's allocatable cpu and memory; Pods its allocatable pod count.
	Allocatable requests.Amount
	Pods        int64
	// Used is the summed requests of the node's non-terminal pods, UsedPods their number.
	Used     requests.Amount
	UsedPods int64
}

// Pod is a pod to place.
type Pod struct {
	Namespace, Name string
	Created         time.Time
	Requests        requests.Amount
}

// fits reports whether a pod requesting r fits n, as the scheduler's filter does: a resource the
// pod does not request never blocks it (even on a node already over its allocatable).
func (n Node) fits(r requests.Amount) bool {
	if n.UsedPods+1 > n.Pods {
		return false
	}
	free := n.Allocatable.Sub(n.Used)
	return (r.MilliCPU <= 0 || r.MilliCPU <= free.MilliCPU) && (r.Memory <= 0 || r.Memory <= free.Memory)
}

func (n *Node) take(r requests.Amount) {
	n.Used = n.Used.Add(r)
	n.UsedPods++
}

// Place places the pods greedily and returns, for each pod in the order given, the name of the
// node it lands on, or "" when it fits nowhere. Pods are taken oldest first (by creation time,
// then namespace and name); each goes to the first node by name where it fits, and takes its
// room there for the pods after it. nodes is not modified.
func Place(nodes []Node, pods []Pod) []string {
	room := slices.Clone(nodes)
	slices.SortFunc(room, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	order := make([]int, len(pods))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		a, b := pods[i], pods[j]
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	out := make([]string, len(pods))
	for _, i := range order {
		for k := range room {
			if room[k].fits(pods[i].Requests) {
				room[k].take(pods[i].Requests)
				out[i] = room[k].Name
				break
			}
		}
	}
	return out
}

// Count returns how many more pods requesting r fit on n.
func Count(n Node, r requests.Amount) int64 {
	count := max(n.Pods-n.UsedPods, 0)
	free := n.Allocatable.Sub(n.Used)
	for _, q := range []struct{ want, free int64 }{{r.MilliCPU, free.MilliCPU}, {r.Memory, free.Memory}} {
		if q.want <= 0 {
			continue
		}
		count = min(count, max(q.free/q.want, 0))
	}
	return count
}
