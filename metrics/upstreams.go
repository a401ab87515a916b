package metrics

import "github.com/prometheus/client_golang/prometheus"

// registerUpstreamPools creates the collectors of routes with several
// upstreams. The upstream label is a configured host:port (bounded by
// the configuration).
func (m *Metrics) registerUpstreamPools(reg *prometheus.Registry) {
	m.UpstreamHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ztproxy_upstream_healthy",
		Help: "1 when an upstream of a route with several upstreams receives requests, 0 when its health check failed or it is ejected.",
	}, []string{"route", "upstream"})
	m.UpstreamEjections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_upstream_ejections_total",
		Help: "Upstreams ejected after consecutive 5xx answers or connection failures (outlier_detection).",
	}, []string{"route", "upstream"})
	m.UpstreamRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_upstream_retries_total",
		Help: "Idempotent requests sent to another upstream after the connection to the first one failed.",
	}, []string{"route"})
	reg.MustRegister(m.UpstreamHealthy, m.UpstreamEjections, m.UpstreamRetries)
}
