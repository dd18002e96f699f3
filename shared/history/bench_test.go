package history

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkObserve is one sample into a full default window (241 samples): the sort for the cpu
// percentile dominates.
func BenchmarkObserve(b *testing.B) {
	c := DefaultConfig()
	var n Node
	at := t0
	for i := range 300 {
		at = at.Add(15 * time.Second)
		n.Observe(c, at, int64(i*7919%4000), int64(i)<<20)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		at = at.Add(15 * time.Second)
		n.Observe(c, at, int64(i*7919%4000), int64(i%4000)<<20)
	}
}

// BenchmarkMemory is the heap of 5,000 nodes after two hours of samples at a 15 s poll with the
// default config (a full 1h window of 241 samples each), as the webhook keeps them: a map from
// node name to *Node.
func BenchmarkMemory(b *testing.B) {
	const nodes = 5000
	c := DefaultConfig()
	c.CPUPercentile = 100 // the same footprint as p95, without sorting 2.4 million windows
	var perNode float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := make(map[string]*Node, nodes)
		for i := range nodes {
			name := "node-" + string(rune('a'+i%26)) + time.Duration(i).String()
			n := &Node{}
			for s := range 480 {
				n.Observe(c, t0.Add(time.Duration(s)*15*time.Second), int64(s), int64(s)<<20)
			}
			m[name] = n
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perNode = float64(after.HeapAlloc-before.HeapAlloc) / nodes
		runtime.KeepAlive(m)
	}
	b.ReportMetric(perNode, "B/node")
	b.ReportMetric(perNode*nodes/(1<<20), "MiB/5000nodes")
}
