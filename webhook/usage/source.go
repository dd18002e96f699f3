package usage

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/client-go/kubernetes"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Options configure a Source.
type Options struct {
	// RefreshInterval is how often NodeMetrics are listed.
	RefreshInterval time.Duration
	// Log receives refresh failures.
	Log *slog.Logger
	// Registerer receives the cache metrics.
	Registerer prometheus.Registerer
}

// Source serves usage samples from the pod cache and the NodeMetrics snapshot.
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
	s.metrics = &metricsPoller{
		client:   metrics,
		interval: o.RefreshInterval,
		timeout:  min(o.RefreshInterval, 10*time.Second),
		onPoll: func(err error, n int) {
			if err != nil {
				refreshes.WithLabelValues("error").Inc()
				o.Log.Warn("usage metrics refresh failed; usage-policy nodes fall back once samples are stale", "err", err)
				return
			}
			refreshes.WithLabelValues("ok").Inc()
			nodes.Set(float64(n))
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
	o.Registerer.MustRegister(refreshes, nodes, last, podsCached, synced)
	return s, nil
}

// Run starts the pod informer and the metrics poller until ctx ends.
func (s *Source) Run(ctx context.Context) {
	go s.pods.run(ctx)
	go s.metrics.run(ctx)
}

// Synced reports whether the pod cache has completed its first list.
func (s *Source) Synced() bool { return s.pods.synced() }

// Sample implements nodes.UsageSource.
func (s *Source) Sample(node string) (*policy.UsageSample, string) {
	if !s.pods.synced() {
		return nil, "pod cache not synced yet"
	}
	req, err := s.pods.requests(node)
	if err != nil {
		return nil, fmt.Sprintf("pod cache: %v", err)
	}
	sample := &policy.UsageSample{Requests: req.List()}
	u, ok, err := s.metrics.get(node)
	if !ok {
		if err != nil {
			return nil, fmt.Sprintf("metrics.k8s.io unavailable (%v)", err)
		}
		return sample, "" // Usage nil: the policy says the node has no metrics
	}
	sample.Usage, sample.Timestamp = u.usage, u.timestamp
	return sample, ""
}
