package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are ztproxy's Prometheus collectors. Labels are bounded: route
// name, decision, status code — never user or path.
type Metrics struct {
	Registry *prometheus.Registry

	Requests        *prometheus.CounterVec
	AuthnSeconds    *prometheus.HistogramVec
	AuthzSeconds    prometheus.Histogram
	UpstreamSeconds *prometheus.HistogramVec
	ConfigReloads   *prometheus.CounterVec
	ConfigLoadedAt  prometheus.Gauge
	CertExpiry      *prometheus.GaugeVec
	InFlight        prometheus.Gauge

	StoreCalls   *prometheus.CounterVec
	StoreSeconds *prometheus.HistogramVec
	RiskCache    *prometheus.CounterVec
	RiskLevels   *prometheus.CounterVec
	RiskErrors   prometheus.Counter

	AWSMints     *prometheus.CounterVec
	AWSSTSTime   prometheus.Histogram
	AWSCacheHits *prometheus.CounterVec

	IdPKeyFetches        *prometheus.CounterVec
	IdPKeyLastSuccess    *prometheus.GaugeVec
	IdPKeyRefetchRefused *prometheus.CounterVec
	IdPUserinfo          *prometheus.CounterVec
	RevocationsPending   prometheus.Gauge
	RevocationRetries    *prometheus.CounterVec

	DeviceLookups *prometheus.CounterVec
	DeviceEvents  *prometheus.CounterVec

	Denied            *prometheus.CounterVec
	UpstreamHealthy   *prometheus.GaugeVec
	UpstreamEjections *prometheus.CounterVec
	UpstreamRetries   *prometheus.CounterVec
	CAE               CAE
}

// New creates the collectors on a new registry that also carries the Go
// runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fast := []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1}
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztproxy_requests_total", Help: "Requests by route, decision and HTTP status.",
		}, []string{"route", "decision", "code"}),
		AuthnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ztproxy_authn_seconds", Help: "Time to authenticate a request.", Buckets: fast,
		}, []string{"kind"}),
		AuthzSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ztproxy_authz_eval_seconds", Help: "Time to evaluate policy for a request.", Buckets: fast,
		}),
		UpstreamSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ztproxy_upstream_seconds", Help: "Time to relay the upstream exchange (request sent to response relayed).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztproxy_config_reloads_total", Help: "Configuration reload attempts by result.",
		}, []string{"result"}),
		ConfigLoadedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztproxy_config_last_reload_success_timestamp_seconds", Help: "When the serving configuration was loaded.",
		}),
		CertExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ztproxy_cert_expiry_timestamp_seconds", Help: "NotAfter of the serving certificates.",
		}, []string{"cert"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztproxy_requests_in_flight", Help: "Requests being served.",
		}),
	}
	m.StoreCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_store_calls_total", Help: "State store calls by operation and result.",
	}, []string{"op", "result"})
	m.StoreSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ztproxy_store_seconds", Help: "State store call latency.", Buckets: prometheus.DefBuckets,
	}, []string{"op"})
	m.RiskCache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_risk_cache_total", Help: "Risk profile cache lookups by result.",
	}, []string{"result"})
	m.RiskLevels = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_risk_assessments_total", Help: "Risk assessments by level.",
	}, []string{"level"})
	m.RiskErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ztproxy_risk_errors_total", Help: "Risk assessments made without the store (failure mode applied).",
	})
	m.AWSMints = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_aws_mints_total", Help: "STS calls by role and result (error code or ok).",
	}, []string{"role", "result"})
	m.AWSSTSTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ztproxy_aws_sts_seconds", Help: "STS call latency, retries included.", Buckets: prometheus.DefBuckets,
	})
	m.AWSCacheHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_aws_cache_hits_total", Help: "AWS credentials served from cache, by role.",
	}, []string{"role"})
	m.registerIdPKeys(reg)
	m.registerDevices(reg)
	m.registerDenied(reg)
	m.registerCAE(reg)
	m.RevocationsPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ztproxy_session_revocations_pending", Help: "Sign-outs enforced on this replica that the shared store has not recorded yet.",
	})
	m.RevocationRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_session_revocation_retries_total", Help: "Background retries of pending sign-outs by result (written, error, abandoned).",
	}, []string{"result"})
	reg.MustRegister(m.RevocationsPending, m.RevocationRetries)
	reg.MustRegister(m.StoreCalls, m.StoreSeconds, m.RiskCache, m.RiskLevels, m.RiskErrors, m.AWSMints, m.AWSSTSTime, m.AWSCacheHits)
	reg.MustRegister(m.Requests, m.AuthnSeconds, m.AuthzSeconds, m.UpstreamSeconds,
		m.ConfigReloads, m.ConfigLoadedAt, m.CertExpiry, m.InFlight)
	m.registerUpstreamPools(reg)
	return m
}

// registerIdPKeys creates the key set collectors. The idp label is a
// configured name (an IdP, or assertion.trusted_jwks[i]).
func (m *Metrics) registerIdPKeys(reg *prometheus.Registry) {
	m.IdPKeyFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_idp_jwks_fetches_total",
		Help: "JWKS fetches by key set, reason (initial, scheduled, unknown_kid) and result (ok, error).",
	}, []string{"idp", "reason", "result"})
	m.IdPKeyLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ztproxy_idp_jwks_last_success_timestamp_seconds", Help: "When a key set was last fetched successfully.",
	}, []string{"idp"})
	m.IdPKeyRefetchRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_idp_jwks_refetches_refused_total",
		Help: "Tokens with an unknown kid refused without a JWKS fetch (one happened less than jwks_min_refetch_interval ago).",
	}, []string{"idp"})
	m.IdPUserinfo = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_idp_userinfo_requests_total",
		Help: "Userinfo requests for bearer token enrichment by IdP and result (ok, error, refused, mismatch); cache hits are not requests.",
	}, []string{"idp", "result"})
	reg.MustRegister(m.IdPKeyFetches, m.IdPKeyLastSuccess, m.IdPKeyRefetchRefused, m.IdPUserinfo)
}

// ObserveUserinfo records a userinfo request (authn.UserinfoEvents).
func (m *Metrics) ObserveUserinfo(idp, result string) {
	m.IdPUserinfo.WithLabelValues(idp, result).Inc()
}

// ObserveKeySetFetch records a key set fetch (authn.KeySetEvents.Fetch).
func (m *Metrics) ObserveKeySetFetch(name, reason string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	} else {
		m.IdPKeyLastSuccess.WithLabelValues(name).SetToCurrentTime()
	}
	m.IdPKeyFetches.WithLabelValues(name, reason, result).Inc()
}

// ObserveKeyRefetchRefused records a token with an unknown kid refused
// without a fetch (authn.KeySetEvents.RefetchRefused).
func (m *Metrics) ObserveKeyRefetchRefused(name string) {
	m.IdPKeyRefetchRefused.WithLabelValues(name).Inc()
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ReloadResult records a configuration reload attempt.
func (m *Metrics) ReloadResult(err error, now time.Time) {
	if err != nil {
		m.ConfigReloads.WithLabelValues("failure").Inc()
		return
	}
	m.ConfigReloads.WithLabelValues("success").Inc()
	m.ConfigLoadedAt.Set(float64(now.Unix()))
}

// SetCertExpiries updates the certificate expiry gauge.
func (m *Metrics) SetCertExpiries(expiries map[string]time.Time) {
	for name, t := range expiries {
		m.CertExpiry.WithLabelValues(name).Set(float64(t.Unix()))
	}
}

// ObserveStoreCall records one state store call; op is bounded
// ("profiles.UpdateItem").
func (m *Metrics) ObserveStoreCall(op string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.StoreCalls.WithLabelValues(op, result).Inc()
	m.StoreSeconds.WithLabelValues(op).Observe(d.Seconds())
}

// SetRevocationsPending and ObserveRevocationRetry feed the pending
// sign-out metrics.
func (m *Metrics) SetRevocationsPending(n int) { m.RevocationsPending.Set(float64(n)) }

func (m *Metrics) ObserveRevocationRetry(result string) {
	m.RevocationRetries.WithLabelValues(result).Inc()
}

// ObserveRiskCache records a profile cache lookup.
func (m *Metrics) ObserveRiskCache(hit bool) {
	if hit {
		m.RiskCache.WithLabelValues("hit").Inc()
		return
	}
	m.RiskCache.WithLabelValues("miss").Inc()
}
