package config

import (
	"slices"
	"strings"

	"ztproxy/decide"
	"ztproxy/idheaders"
)

// CORSPreflightAllow is the one value of routes[].cors_preflight.
const CORSPreflightAllow = "allow"

// checkRouteOptions checks the options for real internal apps (issue 18):
// CORS preflight, header rules, rewrites, limits and timeouts.
func checkRouteOptions(c *collector, path string, r *Route) {
	switch r.CORSPreflight {
	case "", CORSPreflightAllow:
	default:
		c.add(path+".cors_preflight", "must be %q or empty, not %q", CORSPreflightAllow, r.CORSPreflight)
	}
	if r.CORSPreflight != "" && r.AWS != nil {
		c.add(path+".cors_preflight", "not with aws: a preflight has no user to mint credentials for")
	}
	checkHeaderRules(c, path+".request_headers", r.RequestHeaders, true)
	checkHeaderRules(c, path+".response_headers", r.ResponseHeaders, false)
	checkRewrites(c, path, r)
	checkBalancingUnused(c, path, r)
	if r.GRPC {
		for i, u := range append([]string{r.Upstream}, r.Upstreams...) {
			if strings.HasPrefix(u, "http://") {
				p := path + ".upstream"
				if i > 0 {
					p = indexPath(path+".upstreams", i-1)
				}
				c.add(p, "grpc: true needs HTTP/2 to the upstream: use h2c:// (cleartext) or https://")
			}
		}
	}
	for _, lim := range []struct {
		key string
		v   int64
	}{{"max_body_bytes", r.MaxBodyBytes}, {"connect_timeout", int64(r.ConnectTimeout)},
		{"response_header_timeout", int64(r.ResponseHeaderTimeout)}, {"idle_timeout", int64(r.IdleTimeout)}} {
		if lim.v < 0 {
			c.add(path+"."+lim.key, "must not be negative (0 means the default)")
		}
	}
	if rl := r.RateLimit; rl != nil {
		if !(rl.RequestsPerSecond > 0) {
			c.add(path+".rate_limit.requests_per_second", "required: a positive number of requests per second")
		}
		if rl.Burst < 1 {
			c.add(path+".rate_limit.burst", "required: at least 1")
		}
		if rl.MaxPrincipals < 0 {
			c.add(path+".rate_limit.max_principals", "must not be negative (0 means %d)", decide.DefaultMaxPrincipals)
		}
	}
}

func checkHeaderRules(c *collector, path string, hr *HeaderRules, request bool) {
	if hr == nil {
		return
	}
	for i, name := range hr.Remove {
		if msg := idheaders.NameProblem(name, request); msg != "" {
			c.add(indexPath(path+".remove", i), "%q: %s", name, msg)
		}
	}
	names := make([]string, 0, len(hr.Set))
	for name := range hr.Set {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := idheaders.CheckSet(name, hr.Set[name], request); err != nil {
			c.add(joinPath(path+".set", name), "%v", err)
		}
	}
	switch {
	case hr.Preset == "":
	case request:
		c.add(path+".preset", "only response_headers have a preset")
	case hr.Preset != idheaders.PresetSecurity:
		c.add(path+".preset", "must be %q, not %q", idheaders.PresetSecurity, hr.Preset)
	}
}

// checkRewrites checks prefix_rewrite, regex_rewrite, host_rewrite and
// their conflicts with strip_prefix and preserve_host.
func checkRewrites(c *collector, path string, r *Route) {
	if r.PrefixRewrite != "" {
		switch {
		case r.StripPrefix:
			c.add(path+".prefix_rewrite", "not with strip_prefix (prefix_rewrite: / is strip_prefix)")
		case !decide.CheckForwardPath(r.PrefixRewrite):
			c.add(path+".prefix_rewrite", "%q: must be a clean absolute path (no empty, \".\" or \"..\" segment, control byte, \\, # or %%)", r.PrefixRewrite)
		}
	}
	if rr := r.RegexRewrite; rr != nil {
		if _, err := decide.CompileRegexRewrite(rr.Pattern); err != nil {
			c.add(path+".regex_rewrite.pattern", "%s", strings.TrimPrefix(err.Error(), "pattern: "))
		}
		if !idheaders.SafeTemplateValue(rr.Substitution) {
			c.add(path+".regex_rewrite.substitution", "must be printable ASCII")
		}
	}
	if r.HostRewrite != "" {
		if r.PreserveHost {
			c.add(path+".host_rewrite", "not with preserve_host")
		}
		name, _ := splitRouteHost(r.HostRewrite)
		if err := checkHostName(name); err != nil {
			c.add(path+".host_rewrite", "%q: %v", r.HostRewrite, err)
		}
	}
}

// buildRouteOptions compiles the options checkRouteOptions accepted; on
// failure it names the failing field.
func buildRouteOptions(r Route, pr *decide.RouteConfig) (string, error) {
	pr.CORSPreflight = r.CORSPreflight == CORSPreflightAllow
	pr.GRPC = r.GRPC
	pr.HostRewrite = r.HostRewrite
	pr.MaxBodyBytes = r.MaxBodyBytes
	pr.ConnectTimeout, pr.ResponseHeaderTimeout, pr.IdleTimeout = r.ConnectTimeout, r.ResponseHeaderTimeout, r.IdleTimeout
	var err error
	if hr := r.RequestHeaders; hr != nil {
		if pr.RequestHeaders, err = idheaders.CompileRules(idheaders.RuleSpec{Set: hr.Set, Remove: hr.Remove, Preset: hr.Preset}, true); err != nil {
			return "request_headers", err
		}
	}
	if hr := r.ResponseHeaders; hr != nil {
		if pr.ResponseHeaders, err = idheaders.CompileRules(idheaders.RuleSpec{Set: hr.Set, Remove: hr.Remove, Preset: hr.Preset}, false); err != nil {
			return "response_headers", err
		}
	}
	if r.PrefixRewrite != "" || r.RegexRewrite != nil {
		pr.Rewrite = &decide.PathRewrite{Prefix: r.PrefixRewrite}
		if rr := r.RegexRewrite; rr != nil {
			if pr.Rewrite.Regex, err = decide.CompileRegexRewrite(rr.Pattern); err != nil {
				return "regex_rewrite", err
			}
			pr.Rewrite.Substitution = rr.Substitution
		}
	}
	if field, err := buildUpstreams(r, pr); err != nil {
		return field, err
	}
	if rl := r.RateLimit; rl != nil {
		pr.RateLimit = &decide.RateLimit{RequestsPerSecond: rl.RequestsPerSecond, Burst: rl.Burst, MaxPrincipals: rl.MaxPrincipals}
	}
	return "", nil
}
