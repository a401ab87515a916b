package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// HealthCheck probes every endpoint with GET Path each Interval: after
// UnhealthyThreshold failures in a row (a status outside 200–299, a
// connection failure or no answer within Timeout) the endpoint gets no
// requests until HealthyThreshold successes in a row.
type HealthCheck struct {
	Path               string
	Interval, Timeout  time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
}

// Check reports what is wrong with the settings and fills defaults:
// interval 10s, timeout 2s, thresholds 2 and 3.
func (h *HealthCheck) Check() error {
	var errs []error
	if h.Path == "" || h.Path[0] != '/' {
		errs = append(errs, errors.New("path: required, an absolute path such as /healthz"))
	}
	if h.Interval == 0 {
		h.Interval = 10 * time.Second
	}
	if h.Timeout == 0 {
		h.Timeout = 2 * time.Second
	}
	if h.HealthyThreshold == 0 {
		h.HealthyThreshold = 2
	}
	if h.UnhealthyThreshold == 0 {
		h.UnhealthyThreshold = 3
	}
	if h.Interval < 100*time.Millisecond {
		errs = append(errs, errors.New("interval: at least 100ms"))
	}
	if h.Timeout < 0 || h.Timeout > h.Interval {
		errs = append(errs, errors.New("timeout: between 0 and interval"))
	}
	if h.HealthyThreshold < 1 {
		errs = append(errs, errors.New("healthy_threshold: at least 1"))
	}
	if h.UnhealthyThreshold < 1 {
		errs = append(errs, errors.New("unhealthy_threshold: at least 1"))
	}
	return errors.Join(errs...)
}

// Outlier ejects an endpoint for EjectionTime after ConsecutiveFailures
// requests in a row failed on it (5xx answers or connection failures).
type Outlier struct {
	ConsecutiveFailures int
	EjectionTime        time.Duration
}

// Check reports what is wrong and fills defaults: 5 failures, 30s.
func (o *Outlier) Check() error {
	if o.ConsecutiveFailures == 0 {
		o.ConsecutiveFailures = 5
	}
	if o.EjectionTime == 0 {
		o.EjectionTime = 30 * time.Second
	}
	if o.ConsecutiveFailures < 1 || o.EjectionTime < 0 {
		return errors.New("consecutive_failures: at least 1; ejection_time: not negative")
	}
	return nil
}

// failed counts a failure on ep and ejects it at the threshold.
func (p *Pool) failed(ep *endpoint) {
	o := p.outlier
	if o == nil {
		return
	}
	if n := ep.failures.Add(1); int(n) >= o.ConsecutiveFailures {
		ep.failures.Store(0)
		until := time.Now().Add(o.EjectionTime).UnixNano()
		ep.ejectedUntil.Store(until)
		if p.events != nil {
			p.events.Health(ep.name, "ejected")
			time.AfterFunc(o.EjectionTime, func() {
				// Back in rotation, unless ejected again meanwhile or
				// found unhealthy by the active check.
				if ep.ejectedUntil.Load() == until && ep.healthy.Load() {
					p.events.Health(ep.name, "healthy")
				}
			})
		}
	}
}

// EndpointState is one endpoint's health, for /readyz.
type EndpointState struct {
	Endpoint string
	// State is "healthy", "unhealthy" (active check) or "ejected"
	// (passive, until its ejection time ends).
	State    string
	InFlight int64
}

// States are the endpoints' current states, in configuration order.
func (p *Pool) States() []EndpointState {
	now := time.Now().UnixNano()
	out := make([]EndpointState, 0, len(p.endpoints))
	for _, ep := range p.endpoints {
		st := "healthy"
		switch {
		case !ep.healthy.Load():
			st = "unhealthy"
		case ep.ejectedUntil.Load() > now:
			st = "ejected"
		}
		out = append(out, EndpointState{Endpoint: ep.name, State: st, InFlight: ep.inflight.Load()})
	}
	return out
}

// startHealthChecks runs one checker per endpoint until ctx ends. Probes
// use their own net/http client (never the request path's connections)
// and follow no redirect.
func (p *Pool) startHealthChecks(ctx context.Context, hc *HealthCheck, base Config) {
	for _, ep := range p.endpoints {
		c := base
		c.URL = ep.url
		c.Mode = Standard
		t, err := New(c)
		if err != nil {
			continue // New already succeeded for this URL with the same settings
		}
		client := &http.Client{Transport: t, Timeout: hc.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		target := ep.url.JoinPath()
		target.Path, target.RawPath, target.RawQuery = "", "", ""
		probe := target.String() + hc.Path
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer t.CloseIdleConnections()
			p.checkLoop(ctx, hc, ep, client, probe)
		}()
	}
}

func (p *Pool) checkLoop(ctx context.Context, hc *HealthCheck, ep *endpoint, client *http.Client, probe string) {
	tick := time.NewTicker(hc.Interval)
	defer tick.Stop()
	for {
		ok := probeOnce(ctx, client, probe)
		if ctx.Err() != nil {
			return
		}
		p.recordProbe(hc, ep, ok)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// recordProbe applies one active result to ep's thresholds.
func (p *Pool) recordProbe(hc *HealthCheck, ep *endpoint, ok bool) {
	if ok {
		ep.checkPass, ep.checkFail = ep.checkPass+1, 0
		if !ep.healthy.Load() && ep.checkPass >= hc.HealthyThreshold {
			ep.healthy.Store(true)
			ep.ejectedUntil.Store(0) // a recovered endpoint starts afresh
			ep.failures.Store(0)
			if p.events != nil {
				p.events.Health(ep.name, "healthy")
			}
		}
		return
	}
	ep.checkPass, ep.checkFail = 0, ep.checkFail+1
	if ep.healthy.Load() && ep.checkFail >= hc.UnhealthyThreshold {
		ep.healthy.Store(false)
		if p.events != nil {
			p.events.Health(ep.name, "unhealthy")
		}
	}
}

func probeOnce(ctx context.Context, client *http.Client, probe string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, probe, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "ztproxy-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// ParseEndpoints parses upstream URLs for a pool: http or https, no
// query, and all with the same path (requests keep one path whichever
// endpoint serves them).
func ParseEndpoints(raw []string) ([]*url.URL, error) {
	var out []*url.URL
	for i, r := range raw {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != SchemeH2C) || u.Host == "" {
			return nil, fmt.Errorf("[%d]: %q is not an absolute http(s) URL", i, r)
		}
		if len(out) > 0 && u.Path != out[0].Path {
			return nil, fmt.Errorf("[%d]: every upstream must have the same path (%q, not %q)", i, out[0].Path, u.Path)
		}
		out = append(out, u)
	}
	return out, nil
}
