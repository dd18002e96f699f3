package admission

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the wire-level metrics shared by every webhook, labelled by webhook name.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	warnings *prometheus.CounterVec
}

// NewMetrics registers the wire-level metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_webhook_requests_total",
			Help: "Admission requests answered, by webhook and outcome (patched, allowed, denied, error, bad_request, panic, overloaded, timeout).",
		}, []string{"webhook", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "overcommit_webhook_request_duration_seconds",
			Help: "Time from reading an admission request to writing its response.",
			// The apiserver's own webhook histogram starts at 5ms; ours resolves well below it.
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5},
		}, []string{"webhook"}),
		warnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_webhook_warnings_total",
			Help: "Admission warnings returned, by webhook.",
		}, []string{"webhook"}),
	}
	reg.MustRegister(m.requests, m.duration, m.warnings)
	return m
}

// RequestCount returns how many requests a webhook answered with an outcome (tests and e2e read it).
func (m *Metrics) RequestCount(webhook, outcome string) prometheus.Counter {
	return m.requests.WithLabelValues(webhook, outcome)
}
