package usage

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/overcommit-dev/overcommit/shared/history"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// nodeUsage is what readers see of one node: its usage statistic and its newest sample's time.
type nodeUsage struct {
	stat   policy.Statistic
	newest time.Time
}

// nodeWindow is one node's usage window and when the node was last in a NodeMetrics list.
type nodeWindow struct {
	window history.Node
	listed time.Time
}

// pollResult is what one refresh did, for the metrics.
type pollResult struct {
	err error
	// listed is how many nodes the LIST returned; held how many nodes have a statistic (listed
	// ones and those absent for less than the window), warmingUp how many of those are not
	// trusted yet, and samples how many samples their windows hold.
	listed, held, warmingUp, samples int
}

// metricsPoller lists all nodes' usage once per interval, adds each node's sample to its window
// (shared/history) and publishes every node's statistic, after hysteresis, as an immutable
// snapshot behind an atomic pointer: a reader never waits for a refresh, and a lookup is one map
// read.
type metricsPoller struct {
	client   metricsclient.Interface
	interval time.Duration
	timeout  time.Duration
	config   history.Config
	// now is the clock that judges how long a node has been absent; nil means time.Now.
	now func() time.Time
	// windows belongs to the goroutine that polls.
	windows  map[string]*nodeWindow
	snapshot atomic.Pointer[map[string]nodeUsage]
	// lastErr is the most recent refresh error, or nil.
	lastErr atomic.Pointer[error]
	onPoll  func(pollResult)
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
		p.onPoll(pollResult{err: err})
		return // keep the last snapshot: its timestamps age it out
	}
	p.observe(list.Items, p.clock())
	res := p.publish()
	res.listed = len(list.Items)
	p.lastErr.Store(nil)
	p.onPoll(res)
}

func (p *metricsPoller) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// maxClockAhead is how far a sample's timestamp may be ahead of the webhook's clock: clocks
// that NTP keeps agree within a second or two.
const maxClockAhead = 5 * time.Second

// observe adds each listed node's sample to its window and forgets the windows of nodes absent
// from the lists for longer than the window: all their samples would have dropped out by the
// time they came back.
func (p *metricsPoller) observe(items []metricsv1beta1.NodeMetrics, now time.Time) {
	if p.windows == nil {
		p.windows = map[string]*nodeWindow{}
	}
	for i := range items {
		nm := &items[i]
		w := p.windows[nm.Name]
		if w == nil {
			w = &nodeWindow{}
			p.windows[nm.Name] = w
		}
		w.listed = now
		cpu, okCPU := nm.Usage[corev1.ResourceCPU]
		mem, okMem := nm.Usage[corev1.ResourceMemory]
		if !okCPU || !okMem || cpu.Sign() < 0 || mem.Sign() < 0 || nm.Timestamp.Time.After(now.Add(maxClockAhead)) {
			// Not a usable sample: the node's newest sample ages, and once it is older than
			// the settings allow the node falls back to raw, as without metrics. A sample from
			// the future (a clock running ahead) would look fresh for as long as it is ahead
			// and make every true sample after it look old, so it is not taken either.
			continue
		}
		// policy.Amount rounds up: the window never holds less than was measured.
		w.window.Observe(p.config, nm.Timestamp.Time, policy.Amount(corev1.ResourceCPU, cpu), policy.Amount(corev1.ResourceMemory, mem))
	}
	for name, w := range p.windows {
		if now.Sub(w.listed) > p.config.Window {
			delete(p.windows, name)
		}
	}
}

// publish stores every held window's statistic as the new snapshot.
func (p *metricsPoller) publish() pollResult {
	m := make(map[string]nodeUsage, len(p.windows))
	var res pollResult
	for name, w := range p.windows {
		stat, newest, ok := w.window.Usage(p.config)
		if !ok {
			continue
		}
		m[name] = nodeUsage{stat: stat, newest: newest}
		res.samples += stat.Samples
		if stat.WarmingUp {
			res.warmingUp++
		}
	}
	res.held = len(m)
	p.snapshot.Store(&m)
	return res
}

// get returns a node's statistic; ok is false when the node has none.
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
