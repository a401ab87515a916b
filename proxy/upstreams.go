package proxy

import (
	"fmt"
	"io"
	"sync/atomic"

	"ztproxy/upstream"
)

// newTransport builds the route's upstream transport: one upstream's
// (the lean transport for plain http), or a pool over several.
func (f *forwarder) newTransport() error {
	rc, s := f.route, f.server
	headerTimeout := rc.ResponseHeaderTimeout
	if headerTimeout <= 0 {
		headerTimeout = rc.Timeout
	}
	base := upstream.Config{
		URL: rc.Upstream, CAs: rc.UpstreamCAs, ServerName: rc.UpstreamServerName,
		ResponseHeaderTimeout: headerTimeout, DialTimeout: rc.ConnectTimeout, IdleConnTimeout: rc.IdleTimeout,
		Mode: rc.UpstreamTransport,
		OnUnsolicited: func() {
			// Never log the bytes: they may be another user's response.
			s.log.Warn("upstream sent an unsolicited response on an idle connection; connection closed", "route", rc.Name)
		},
	}
	if len(rc.Upstreams) < 2 {
		t, err := upstream.New(base)
		f.transport = t
		return err
	}
	f.poolClosed = new(atomic.Bool)
	ev := poolEvents{server: s, route: rc.Name, closed: f.poolClosed}
	for _, u := range rc.Upstreams {
		ev.Health(u.Host, "healthy")
	}
	pool, err := upstream.NewPool(upstream.PoolConfig{Endpoints: rc.Upstreams, Base: base, Policy: rc.LBPolicy,
		Health: rc.HealthCheck, Outlier: rc.Outlier, Events: ev})
	if err != nil {
		return err
	}
	f.pool, f.transport = pool, pool
	return nil
}

// poolEvents turn a pool's health changes into metrics and log lines.
// Once the pool's forwarder is closed (replaced by a reload), its late
// events (an ejection timer, an in-flight request's failure) are dropped:
// they would overwrite the new pool's state or bring back the series of
// a removed route.
type poolEvents struct {
	server *Server
	route  string
	closed *atomic.Bool
}

func (e poolEvents) Health(endpoint, state string) {
	if e.closed.Load() {
		return
	}
	v := 0.0
	if state == "healthy" {
		v = 1
	}
	e.server.metrics.UpstreamHealthy.WithLabelValues(e.route, endpoint).Set(v)
	if state == "ejected" {
		e.server.metrics.UpstreamEjections.WithLabelValues(e.route, endpoint).Inc()
	}
	e.server.log.Info("upstream health", "route", e.route, "upstream", endpoint, "state", state)
}

func (e poolEvents) Retried(endpoint string) {
	if e.closed.Load() {
		return
	}
	e.server.metrics.UpstreamRetries.WithLabelValues(e.route).Inc()
	e.server.log.Warn("upstream connection failed; request sent to another upstream", "route", e.route, "upstream", endpoint)
}

// writeUpstreamHealth appends the state of every pooled upstream to
// /readyz: "upstream <route> <host:port> <state> inflight=<n>".
func (s *Server) writeUpstreamHealth(w io.Writer) {
	snap := s.state.Load()
	if snap == nil {
		return
	}
	for _, f := range snap.forward {
		if f.pool == nil {
			continue
		}
		for _, st := range f.pool.States() {
			fmt.Fprintf(w, "upstream %s %s %s inflight=%d\n", f.route.Name, st.Endpoint, st.State, st.InFlight)
		}
	}
}

// dropUpstreamSeries deletes the ztproxy_upstream_healthy series of the
// pooled upstreams of gone's routes that kept does not have (a route
// removed or renamed by a reload, an upstream taken out of a pool, a
// rejected configuration's pools). gone's forwarders must be closed, so
// that no late event sets a series again. kept may be nil.
func (s *Server) dropUpstreamSeries(gone, kept *snapshot) {
	keep := map[[2]string]bool{}
	if kept != nil {
		for _, f := range kept.forward {
			if f.pool != nil {
				for _, u := range f.route.Upstreams {
					keep[[2]string{f.route.Name, u.Host}] = true
				}
			}
		}
	}
	for _, f := range gone.forward {
		if f.pool == nil {
			continue
		}
		for _, u := range f.route.Upstreams {
			if !keep[[2]string{f.route.Name, u.Host}] {
				s.metrics.UpstreamHealthy.DeleteLabelValues(f.route.Name, u.Host)
			}
		}
	}
}
