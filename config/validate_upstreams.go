package config

import (
	"net/url"
	"strings"

	"ztproxy/decide"
	"ztproxy/upstream"
)

// maxUpstreams bounds a route's upstream list.
const maxUpstreams = 64

// checkUpstreams checks a route with several upstreams (issue 18):
// absolute http(s) URLs with one scheme and one path, the balancing
// policy, health check and outlier settings.
func (f *File) checkUpstreams(c *collector, path string, r *Route) {
	if r.Upstream != "" {
		c.add(path+".upstreams", "use upstream or upstreams, not both")
		return
	}
	if len(r.Upstreams) > maxUpstreams {
		c.add(path+".upstreams", "at most %d upstreams", maxUpstreams)
		return
	}
	var first *url.URL
	for i, raw := range r.Upstreams {
		p := indexPath(path+".upstreams", i)
		if _, ok := checkUpstreamURL(c, p, raw); !ok {
			continue
		}
		u, _ := url.Parse(raw)
		switch {
		case first == nil:
			first = u
		case u.Scheme != first.Scheme:
			c.add(p, "all upstreams of a route use one scheme (%s)", first.Scheme)
		case u.Path != first.Path:
			c.add(p, "all upstreams of a route have one path (%q, not %q)", first.Path, u.Path)
		}
	}
	if r.UpstreamCAFile != "" {
		f.checkFile(c, path+".upstream_ca_file", &r.UpstreamCAFile)
	}
	if r.UpstreamServerName != "" {
		if err := checkHostName(r.UpstreamServerName); err != nil {
			c.add(path+".upstream_server_name", "%q: %v", r.UpstreamServerName, err)
		}
	}
	checkBalancing(c, path, r)
}

// checkBalancing checks lb_policy, health_check and outlier_detection.
func checkBalancing(c *collector, path string, r *Route) {
	switch upstream.LBPolicy(r.LBPolicy) {
	case "", upstream.RoundRobin, upstream.LeastRequest, upstream.Random, upstream.HashUser:
	default:
		c.add(path+".lb_policy", "must be round_robin, least_request, random or hash_user, not %q", r.LBPolicy)
	}
	if hc := r.HealthCheck; hc != nil {
		h := healthCheck(hc)
		if err := h.Check(); err != nil {
			for _, msg := range splitErrors(err) {
				// upstream reports "key: problem"; name the key's path.
				key, problem, _ := strings.Cut(msg, ": ")
				c.add(path+".health_check."+key, "%s", problem)
			}
		}
	}
	if o := r.OutlierDetection; o != nil {
		out := upstream.Outlier{ConsecutiveFailures: o.ConsecutiveFailures, EjectionTime: o.EjectionTime}
		if err := out.Check(); err != nil {
			c.add(path+".outlier_detection", "%v", err)
		}
	}
}

// checkBalancingUnused reports balancing settings on a route with one
// upstream, where they would silently do nothing.
func checkBalancingUnused(c *collector, path string, r *Route) {
	if len(r.Upstreams) > 0 {
		return
	}
	for _, opt := range []struct {
		key string
		set bool
	}{{"lb_policy", r.LBPolicy != ""}, {"health_check", r.HealthCheck != nil}, {"outlier_detection", r.OutlierDetection != nil}} {
		if opt.set {
			c.add(path+"."+opt.key, "only used with upstreams (a list of several upstream URLs)")
		}
	}
}

func healthCheck(hc *RouteHealthCheck) upstream.HealthCheck {
	return upstream.HealthCheck{Path: hc.Path, Interval: hc.Interval, Timeout: hc.Timeout,
		HealthyThreshold: hc.HealthyThreshold, UnhealthyThreshold: hc.UnhealthyThreshold}
}

// buildUpstreams fills the pool settings of a route with several
// upstreams.
func buildUpstreams(r Route, pr *decide.RouteConfig) (string, error) {
	if len(r.Upstreams) == 0 {
		return "", nil
	}
	eps, err := upstream.ParseEndpoints(r.Upstreams)
	if err != nil {
		return "upstreams", err
	}
	pr.Upstreams, pr.Upstream, pr.LBPolicy = eps, eps[0], upstream.LBPolicy(r.LBPolicy)
	if hc := r.HealthCheck; hc != nil {
		h := healthCheck(hc)
		if err := h.Check(); err != nil {
			return "health_check", err
		}
		pr.HealthCheck = &h
	}
	if o := r.OutlierDetection; o != nil {
		pr.Outlier = &upstream.Outlier{ConsecutiveFailures: o.ConsecutiveFailures, EjectionTime: o.EjectionTime}
		if err := pr.Outlier.Check(); err != nil {
			return "outlier_detection", err
		}
	}
	return "", nil
}
