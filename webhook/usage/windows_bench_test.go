package usage

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/history"
)

// BenchmarkWindowsAtScale measures what the usage windows add to the webhook's heap at 5,000
// nodes: an hour of polls at 15 s through the poller (windows, hysteresis and the published
// snapshot), with the default window. The heap is measured after a collection, without the
// fake NodeMetrics list, which the real webhook drops after each poll.
func BenchmarkWindowsAtScale(b *testing.B) {
	const nodes = 5000
	for range b.N {
		f := &fakeMetrics{}
		for i := range nodes {
			f.items = append(f.items, usageAt(fmt.Sprintf("node-%05d", i), 0, fmt.Sprintf("%dm", 500+i%1500), fmt.Sprintf("%dMi", 1024+i%4096)))
		}
		p := &metricsPoller{client: f.client(), interval: 15 * time.Second, timeout: time.Minute, config: history.DefaultConfig(),
			onPoll: func(pollResult) {}}
		before := heapInUse()
		polls := int(time.Hour/(15*time.Second)) + 1
		for k := range polls {
			at := t0.Add(time.Duration(k) * 15 * time.Second)
			for i := range f.items {
				f.items[i].Timestamp = metav1.NewTime(at)
			}
			p.now = func() time.Time { return at }
			p.poll(context.Background())
		}
		f.items = nil
		after := heapInUse()
		runtime.KeepAlive(p)
		b.ReportMetric(float64(after-before)/(1<<20), "MiB-heap")
		b.ReportMetric(float64(after-before)/nodes, "B/node")
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
