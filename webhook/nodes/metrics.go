package nodes

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the node webhook did beyond the wire-level request metrics.
type Metrics struct {
	patched   *prometheus.CounterVec
	fallbacks prometheus.Counter
	errors    *prometheus.CounterVec
	settings  *prometheus.CounterVec
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
		settings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_node_settings_problems_total",
			Help: "Writes of opted-in nodes answered without valid settings, by state: missing (the settings ConfigMap does not exist or is not loaded; the node was left unchanged) or invalid (the defaults applied).",
		}, []string{"state"}),
	}
	// Both series exist from the start, so an alert on either has something to watch.
	m.settings.WithLabelValues("missing")
	m.settings.WithLabelValues("invalid")
	reg.MustRegister(m.patched, m.fallbacks, m.errors, m.settings)
	return m
}
