package pods

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the pod webhook did beyond the wire-level request metrics.
type Metrics struct {
	injected *prometheus.CounterVec
	denied   *prometheus.CounterVec
	skipped  *prometheus.CounterVec
}

// NewMetrics registers the pod webhook's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		injected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_sidecar_injections_total",
			Help: "Sidecar templates injected into pods (dry runs excluded), by template.",
		}, []string{"template"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_sidecar_denials_total",
			Help: "Pods denied by the pod webhook, by reason (invalid_annotation, unknown_template, invalid_template, conflict, not_ready, invalid_pod, decode, patch, too_large, abandoned).",
		}, []string{"reason"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_sidecar_skips_total",
			Help: "Requested sidecar templates deliberately not injected (hostNetwork pods of a skipHostNetwork template), by template.",
		}, []string{"template"}),
	}
	reg.MustRegister(m.injected, m.denied, m.skipped)
	return m
}
