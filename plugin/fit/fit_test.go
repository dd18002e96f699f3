package fit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/overcommit-dev/overcommit/shared/requests"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func node(name string, cpu, mem, pods, usedCPU, usedMem, usedPods int64) Node {
	return Node{Name: name, Allocatable: requests.Amount{MilliCPU: cpu, Memory: mem}, Pods: pods,
		Used: requests.Amount{MilliCPU: usedCPU, Memory: usedMem}, UsedPods: usedPods}
}

func pod(name string, age time.Duration, cpu, mem int64) Pod {
	return Pod{Namespace: "default", Name: name, Created: t0.Add(-age), Requests: requests.Amount{MilliCPU: cpu, Memory: mem}}
}

func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []Node
		pods  []Pod
		want  []string
	}{{
		name:  "exactly the free room fits",
		nodes: []Node{node("a", 4000, 8<<30, 110, 3000, 4<<30, 3)},
		pods:  []Pod{pod("p", 0, 1000, 4<<30)},
		want:  []string{"a"},
	}, {
		name:  "one millicore over does not",
		nodes: []Node{node("a", 4000, 8<<30, 110, 3000, 4<<30, 3)},
		pods:  []Pod{pod("p", 0, 1001, 1)},
		want:  []string{""},
	}, {
		name:  "memory blocks alone",
		nodes: []Node{node("a", 4000, 8<<30, 110, 0, 4<<30, 1)},
		pods:  []Pod{pod("p", 0, 1, 4<<30+1)},
		want:  []string{""},
	}, {
		name:  "the pod count blocks",
		nodes: []Node{node("a", 4000, 8<<30, 3, 0, 0, 3)},
		pods:  []Pod{pod("p", 0, 0, 0)},
		want:  []string{""},
	}, {
		name:  "an unrequested resource never blocks, even on a node over its allocatable",
		nodes: []Node{node("a", 4000, 8<<30, 110, 6000, 1<<30, 3)},
		pods:  []Pod{pod("p", 0, 0, 1<<30)},
		want:  []string{"a"},
	}, {
		name:  "oldest first takes the room, first node by name",
		nodes: []Node{node("b", 2000, 8<<30, 110, 0, 0, 0), node("a", 2000, 8<<30, 110, 0, 0, 0)},
		pods:  []Pod{pod("young", time.Minute, 2000, 0), pod("old", time.Hour, 2000, 0), pod("oldest", 2*time.Hour, 1500, 0)},
		want:  []string{"", "b", "a"},
	}, {
		name:  "same age: by namespace and name",
		nodes: []Node{node("a", 1000, 8<<30, 110, 0, 0, 0)},
		pods:  []Pod{pod("y", 0, 1000, 0), pod("x", 0, 1000, 0)},
		want:  []string{"", "a"},
	}, {
		name: "no nodes",
		pods: []Pod{pod("p", 0, 1, 1)},
		want: []string{""},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := append([]Node(nil), tc.nodes...)
			if diff := cmp.Diff(tc.want, Place(tc.nodes, tc.pods)); diff != "" {
				t.Errorf("Place (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(nodes, tc.nodes); diff != "" {
				t.Errorf("Place changed its nodes (-before +after):\n%s", diff)
			}
		})
	}
}

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		node Node
		req  requests.Amount
		want int64
	}{
		{"cpu bound", node("a", 4000, 8<<30, 110, 1000, 0, 1), requests.Amount{MilliCPU: 1000, Memory: 1 << 30}, 3},
		{"memory bound", node("a", 4000, 8<<30, 110, 0, 5<<30, 1), requests.Amount{MilliCPU: 100, Memory: 1 << 30}, 3},
		{"pod count bound", node("a", 4000, 8<<30, 5, 0, 0, 3), requests.Amount{MilliCPU: 1, Memory: 1}, 2},
		{"no requests: the pod count", node("a", 4000, 8<<30, 110, 0, 0, 10), requests.Amount{}, 100},
		{"over its allocatable: none", node("a", 4000, 8<<30, 110, 5000, 0, 1), requests.Amount{MilliCPU: 100}, 0},
		{"over its pod count: none", node("a", 4000, 8<<30, 2, 0, 0, 3), requests.Amount{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Count(tc.node, tc.req); got != tc.want {
				t.Errorf("Count = %d, want %d", got, tc.want)
			}
			// Placing one more than Count pods leaves exactly one out.
			pods := make([]Pod, tc.want+1)
			for i := range pods {
				pods[i] = pod("p", time.Duration(len(pods)-i)*time.Second, tc.req.MilliCPU, tc.req.Memory)
			}
			placed := Place([]Node{tc.node}, pods)
			if placed[len(placed)-1] != "" || (tc.want > 0 && placed[0] != "a") {
				t.Errorf("Place of %d pods = %v, want all but the last on a", len(pods), placed)
			}
		})
	}
}
