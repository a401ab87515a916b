package metrics

import "github.com/prometheus/client_golang/prometheus"

// CAE holds the continuous access evaluation collectors (issue 17).
type CAE struct {
	Polls   *prometheus.CounterVec
	Applied prometheus.Counter
	Events  *prometheus.CounterVec
}

// registerCAE creates the continuous access evaluation collectors.
func (m *Metrics) registerCAE(reg *prometheus.Registry) {
	m.CAE.Polls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_cae_feed_polls_total",
		Help: "Change feed reads by result (ok, error).",
	}, []string{"result"})
	m.CAE.Applied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ztproxy_cae_changes_applied_total",
		Help: "Changes from the feed applied on this replica (revoked sessions, flags, devices).",
	})
	m.CAE.Events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_cae_events_total",
		Help: "Security events (SETs) and operator API actions by source (set, admin_api) and result (applied, ignored).",
	}, []string{"source", "result"})
	reg.MustRegister(m.CAE.Polls, m.CAE.Applied, m.CAE.Events)
}

// ObserveCAEPoll counts one change feed read (cae.Config.OnPoll).
func (m *Metrics) ObserveCAEPoll(err error, applied int) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.CAE.Polls.WithLabelValues(result).Inc()
	m.CAE.Applied.Add(float64(applied))
}

// ObserveCAEEvent counts a pushed security event.
func (m *Metrics) ObserveCAEEvent(source, result string) {
	m.CAE.Events.WithLabelValues(source, result).Inc()
}
