package metrics

import "github.com/prometheus/client_golang/prometheus"

// registerDenied creates the collector of refused requests by reason
// (issue 19: dashboards show denials and step-ups by reason).
func (m *Metrics) registerDenied(reg *prometheus.Registry) {
	m.Denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_requests_denied_total",
		Help: "Requests not allowed, by route, decision (deny, step_up, unauthenticated, error), reason (the error code sent) and the policy that decided (empty when none did).",
	}, []string{"route", "decision", "reason", "policy"})
	reg.MustRegister(m.Denied)
}

// ObserveDenied records a request that was not allowed. reason is an
// error code of docs/operations.md's table and policy a configured policy
// id, so the labels stay bounded.
func (m *Metrics) ObserveDenied(route, decision, reason, policy string) {
	m.Denied.WithLabelValues(route, decision, reason, policy).Inc()
}
