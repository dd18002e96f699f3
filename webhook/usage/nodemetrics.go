package usage

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// nodeUsage is one node's measured usage.
type nodeUsage struct {
	usage     corev1.ResourceList
	timestamp time.Time
}

// metricsPoller refreshes all nodes' usage with one LIST per interval and keeps the latest
// snapshot behind an atomic pointer, so readers never wait for a refresh.
type metricsPoller struct {
	client   metricsclient.Interface
	interval time.Duration
	timeout  time.Duration
	snapshot atomic.Pointer[map[string]nodeUsage]
	// lastErr is the most recent refresh error, or nil.
	lastErr atomic.Pointer[error]
	onPoll  func(err error, nodes int)
}

func (p *metricsPoller) run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *metricsPoller) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	list, err := p.client.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
	if err != nil {
		err = fmt.Errorf("listing NodeMetrics: %w", err)
		p.lastErr.Store(&err)
		p.onPoll(err, 0)
		return // keep the last snapshot: its timestamps age it out
	}
	m := make(map[string]nodeUsage, len(list.Items))
	for i := range list.Items {
		nm := &list.Items[i]
		m[nm.Name] = nodeUsage{usage: nm.Usage, timestamp: nm.Timestamp.Time}
	}
	p.snapshot.Store(&m)
	p.lastErr.Store(nil)
	p.onPoll(nil, len(m))
}

// get returns a node's latest usage; ok is false when the node has none.
func (p *metricsPoller) get(node string) (nodeUsage, bool, error) {
	var err error
	if e := p.lastErr.Load(); e != nil {
		err = *e
	}
	m := p.snapshot.Load()
	if m == nil {
		return nodeUsage{}, false, err
	}
	u, ok := (*m)[node]
	return u, ok, err
}
