package nodes

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the node webhook did beyond the wire-level request metrics.
type Metrics struct {
	patched   *prometheus.CounterVec
	fallbacks prometheus.Counter
	errors    *prometheus.CounterVec
}

// NewMetrics registers the node webhook's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		patched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_node_patches_total",
			Help: "Node writes whose allocatable or capacity the webhook changed (dry runs excluded), by policy.",
		}, []string{"policy"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "overcommit_node_usage_fallbacks_total",
			Help: "Node writes where the usage policy lacked fresh pod or metrics data and kept the raw allocatable.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_node_errors_total",
			Help: "Node writes allowed unchanged because of an internal problem, by kind (decode, unexpected, patch, panic).",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.patched, m.fallbacks, m.errors)
	return m
}
