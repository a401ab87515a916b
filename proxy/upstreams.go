package proxy

import (
	"fmt"
	"io"

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
	ev := poolEvents{server: s, route: rc.Name}
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
type poolEvents struct {
	server *Server
	route  string
}

func (e poolEvents) Health(endpoint, state string) {
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
