package usage

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overcommit-dev/overcommit/shared/history"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Options configure a Source.
type Options struct {
	// RefreshInterval is how often NodeMetrics are listed.
	RefreshInterval time.Duration
	// History is how each node's window of samples becomes the statistic Sample returns.
	History history.Config
	// Log receives refresh failures.
	Log *slog.Logger
	// Registerer receives the cache metrics.
	Registerer prometheus.Registerer
}

// Source serves usage samples from the pod cache and the NodeMetrics windows.
type Source struct {
	pods    *podCache
	metrics *metricsPoller
}

// NewSource builds the caches; Run starts them.
func NewSource(kube kubernetes.Interface, metrics metricsclient.Interface, o Options) (*Source, error) {
	pods, err := newPodCache(kube, 0)
	if err != nil {
		return nil, err
	}
	s := &Source{pods: pods}
	refreshes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "overcommit_usage_metrics_refreshes_total",
		Help: "NodeMetrics LIST refreshes, by result (ok, error).",
	}, []string{"result"})
	nodes := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "overcommit_usage_metrics_nodes",
		Help: "Nodes in the latest NodeMetrics snapshot.",
	})
	last := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "overcommit_usage_metrics_last_success_timestamp_seconds",
		Help: "When NodeMetrics were last listed successfully.",
	})
	held := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "overcommit_usage_history_nodes",
		Help: "Nodes with a usage window (listed, or absent from the NodeMetrics list for less than --usage-window).",
	})
	warming := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "overcommit_usage_history_nodes_warming_up",
		Help: "Nodes whose usage window spans less than --usage-min-window: the usage policy holds them at their pods' requests.",
	})
	samples := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "overcommit_usage_history_samples",
		Help: "Usage samples held across all nodes' windows (12 bytes each).",
	})
	s.metrics = &metricsPoller{
		client:   metrics,
		interval: o.RefreshInterval,
		timeout:  min(o.RefreshInterval, 10*time.Second),
		config:   o.History,
		onPoll: func(r pollResult) {
			if r.err != nil {
				refreshes.WithLabelValues("error").Inc()
				o.Log.Warn("usage metrics refresh failed; usage-policy nodes fall back once samples are stale", "err", r.err)
				return
			}
			refreshes.WithLabelValues("ok").Inc()
			nodes.Set(float64(r.listed))
			held.Set(float64(r.held))
			warming.Set(float64(r.warmingUp))
			samples.Set(float64(r.samples))
			last.SetToCurrentTime()
		},
	}
	podsCached := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "overcommit_usage_pod_cache_pods",
		Help: "Pods held in the stripped pod cache.",
	}, func() float64 { return float64(s.pods.count()) })
	synced := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "overcommit_usage_pod_cache_synced",
		Help: "1 once the pod cache has synced.",
	}, func() float64 {
		if s.pods.synced() {
			return 1
		}
		return 0
	})
	o.Registerer.MustRegister(refreshes, nodes, last, held, warming, samples, podsCached, synced)
	return s, nil
}

// Run starts the pod informer and the metrics poller until ctx ends.
func (s *Source) Run(ctx context.Context) {
	go s.pods.run(ctx)
	go s.metrics.run(ctx)
}

// Synced reports whether the pod cache has completed its first list.
func (s *Source) Synced() bool { return s.pods.synced() }

// Sample implements nodes.UsageSource: the node's live requests and its usage statistic (the
// window's percentiles after hysteresis), as of the window's newest sample.
func (s *Source) Sample(node string) (*policy.UsageSample, string) {
	req, why := s.Requests(node)
	if req == nil {
		return nil, why
	}
	sample := &policy.UsageSample{Requests: req}
	u, ok, err := s.metrics.get(node)
	if !ok {
		if err != nil {
			return nil, fmt.Sprintf("metrics.k8s.io unavailable (%v)", err)
		}
		return sample, "" // Usage nil: the policy says the node has no metrics
	}
	stat := u.stat
	sample.Usage = corev1.ResourceList{
		corev1.ResourceCPU:    policy.Quantity(corev1.ResourceCPU, stat.CPU),
		corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, stat.Memory),
	}
	sample.Timestamp, sample.Statistic = u.newest, &stat
	return sample, ""
}

// Requests implements nodes.UsageSource: the summed requests of the pods bound to the node, for
// any opted-in node (the pressure guard holds allocatable at them), or nil and why not.
func (s *Source) Requests(node string) (corev1.ResourceList, string) {
	if !s.pods.synced() {
		return nil, "pod cache not synced yet"
	}
	req, err := s.pods.requests(node)
	if err != nil {
		return nil, fmt.Sprintf("pod cache: %v", err)
	}
	return req.List(), ""
}
