package config

import (
	"ztproxy/decide"
)

// idpUse records the first route that needs something of an IdP, so that
// a missing client_id or audience is reported once, at the IdP.
type idpUse struct {
	browser map[int]string // idp index → first browser route name
	bearer  map[int]string // idp index → first bearer route name
}

func (f *File) checkRoutes(c *collector) {
	names := map[string]int{}
	targets := map[string]int{}
	use := idpUse{browser: map[int]string{}, bearer: map[int]string{}}
	if f.Mode == ModeProxy && len(f.Routes) == 0 {
		c.add("routes", "required: at least one route (or mode: sidecar)")
	}
	for i := range f.Routes {
		r := &f.Routes[i]
		path := indexPath("routes", i)
		checkName(c, path+".name", r.Name, routeNamePattern, "[a-z0-9_-]+", names, indexPath("routes", names[r.Name]))
		if _, seen := names[r.Name]; !seen && r.Name != "" {
			names[r.Name] = i
		}
		hostOK := f.checkRouteHost(c, path, r)
		prefixOK := checkRoutePrefix(c, path, r)
		if hostOK && prefixOK {
			key := r.Host + " " + r.PathPrefix
			if j, dup := targets[key]; dup {
				c.add(path+".path_prefix", "%q on host %q is already routed by routes[%d]", r.PathPrefix, r.Host, j)
			} else {
				targets[key] = i
			}
		}
		f.checkUpstream(c, path, r)
		f.checkRouteAuth(c, path, r, use)
		if r.Timeout < 0 {
			c.add(path+".timeout", "must not be negative (0 means no timeout)")
		}
		checkAllowedOrigins(c, path, r)
		checkUpstreamTransport(c, path+".upstream_transport", r.UpstreamTransport, true)
		checkRouteOptions(c, path, r)
	}
	f.checkIdPUse(c, use)
}

// checkAllowedOrigins checks and canonicalises a route's
// allowed_origins: exact origins, only on WebSocket routes (the only
// requests they apply to).
func checkAllowedOrigins(c *collector, path string, r *Route) {
	if len(r.AllowedOrigins) > 0 && !r.WebSocket {
		c.add(path+".allowed_origins", "only used with websocket: true")
	}
	for i, o := range r.AllowedOrigins {
		canon, err := decide.CanonicalOrigin(o)
		if err != nil {
			c.add(indexPath(path+".allowed_origins", i), "%q: %v", o, err)
			continue
		}
		r.AllowedOrigins[i] = canon
	}
}

// checkName checks a required, unique name. names holds the names seen so
// far; firstPath names the entry that already has this one.
func checkName(c *collector, path, name string, pattern interface{ MatchString(string) bool }, patternText string, names map[string]int, firstPath string) {
	switch _, dup := names[name]; {
	case name == "":
		c.add(path, "required")
	case !pattern.MatchString(name):
		c.add(path, "%q must match %s", name, patternText)
	case dup:
		c.add(path, "duplicate name %q (also %s)", name, firstPath)
	}
}

func (f *File) checkRouteHost(c *collector, path string, r *Route) bool {
	if r.Host == "" {
		c.add(path+".host", "required")
		return false
	}
	host, err := canonicalRouteHost(r.Host, !f.InsecurePlaintext)
	if err != nil {
		c.add(path+".host", "%q: %v", r.Host, err)
		return false
	}
	r.Host = host
	return true
}

func checkRoutePrefix(c *collector, path string, r *Route) bool {
	prefix, err := canonicalPathPrefix(r.PathPrefix)
	if err != nil {
		c.add(path+".path_prefix", "%q: %v", r.PathPrefix, err)
		return false
	}
	r.PathPrefix = prefix
	return true
}

func (f *File) checkUpstream(c *collector, path string, r *Route) {
	if len(r.Upstreams) > 0 {
		f.checkUpstreams(c, path, r)
		return
	}
	isHTTPS, ok := checkUpstreamURL(c, path+".upstream", r.Upstream)
	if r.UpstreamCAFile != "" {
		f.checkFile(c, path+".upstream_ca_file", &r.UpstreamCAFile)
		if ok && !isHTTPS {
			c.add(path+".upstream_ca_file", "only used with an https upstream")
		}
	}
	if r.UpstreamServerName != "" {
		if err := checkHostName(r.UpstreamServerName); err != nil {
			c.add(path+".upstream_server_name", "%q: %v", r.UpstreamServerName, err)
		} else if ok && !isHTTPS {
			c.add(path+".upstream_server_name", "only used with an https upstream")
		}
	}
}

// checkUpstreamURL checks an upstream URL and reports whether it is https
// and whether it is valid at all.
func checkUpstreamURL(c *collector, path, raw string) (isHTTPS, ok bool) {
	if raw == "" {
		c.add(path, "required: an absolute http(s) URL")
		return false, false
	}
	u, msg := checkURL(raw, urlRules{noQuery: true, h2c: true})
	if msg != "" {
		c.add(path, "%s", msg)
		return false, false
	}
	return u.Scheme == "https", true
}

func (f *File) checkRouteAuth(c *collector, path string, r *Route, use idpUse) {
	idpIndex := -1
	if r.IdP != "" {
		idpIndex = f.idpIndex(r.IdP)
		if idpIndex < 0 {
			c.add(path+".idp", "no idp named %q", r.IdP)
		}
	}
	switch r.Auth {
	case "":
		c.add(path+".auth", "required: bearer, mtls, browser or public")
	case AuthBrowser:
		if r.IdP == "" {
			if len(f.IdPs) == 0 {
				c.add(path+".idp", "browser sign-in needs an idp, and none is configured")
				return
			}
			r.IdP, idpIndex = f.IdPs[0].Name, 0
		}
		if _, seen := use.browser[idpIndex]; !seen && idpIndex >= 0 {
			use.browser[idpIndex] = r.Name
		}
	case AuthBearer:
		if idpIndex >= 0 {
			if _, seen := use.bearer[idpIndex]; !seen {
				use.bearer[idpIndex] = r.Name
			}
		} else if r.IdP == "" && !f.anyIdPHasAudiences() {
			c.add(path+".auth", "bearer needs an idp with audiences, and none has them")
		}
	case AuthMTLS:
		if f.TLS.ClientAuth != ClientAuthRequest && f.TLS.ClientAuth != ClientAuthRequire {
			c.add(path+".auth", "mtls needs tls.client_auth request or require")
		}
	case AuthPublic:
	default:
		c.add(path+".auth", "must be bearer, mtls, browser or public, not %q", r.Auth)
	}
}

// checkIdPUse reports IdPs that lack what their routes need.
func (f *File) checkIdPUse(c *collector, use idpUse) {
	for i := range f.IdPs {
		idp := &f.IdPs[i]
		path := indexPath("idps", i)
		if route, ok := use.browser[i]; ok {
			if idp.ClientID == "" {
				c.add(path+".client_id", "required: browser route %q signs in with this idp", route)
			}
			if idp.ResolvedClientSecret == "" && idp.ClientSecretFile == "" {
				c.add(path+".client_secret", "required (or client_secret_file): browser route %q signs in with this idp", route)
			}
		}
		if route, ok := use.bearer[i]; ok && len(idp.Audiences) == 0 {
			c.add(path+".audiences", "required: bearer route %q accepts this idp's tokens", route)
		}
	}
}

func (f *File) idpIndex(name string) int {
	for i := range f.IdPs {
		if f.IdPs[i].Name == name {
			return i
		}
	}
	return -1
}

func (f *File) anyIdPHasAudiences() bool {
	for i := range f.IdPs {
		if len(f.IdPs[i].Audiences) > 0 {
			return true
		}
	}
	return false
}

func (f *File) checkSidecar(c *collector) {
	switch {
	case f.Mode == ModeSidecar && f.Sidecar == nil:
		c.add("sidecar.upstream", "required when mode is sidecar")
	case f.Mode == ModeSidecar:
		checkUpstreamURL(c, "sidecar.upstream", f.Sidecar.Upstream)
		names := map[string]int{}
		for i, r := range f.Routes {
			if _, seen := names[r.Name]; !seen {
				names[r.Name] = i
			}
		}
		checkName(c, "sidecar.name", f.Sidecar.Name, routeNamePattern, "[a-z0-9_-]+", names, indexPath("routes", names[f.Sidecar.Name]))
	case f.Mode == ModeProxy && f.Sidecar != nil:
		c.add("sidecar", "only used when mode is sidecar")
	}
}
