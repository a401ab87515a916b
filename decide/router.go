package decide

import (
	"sort"
	"strings"
)

// Route is a compiled RouteConfig: what the engine matched a request to.
type Route struct {
	RouteConfig
	// Index is the route's position in Config.Routes, for front doors that
	// keep per-route state of their own (the reverse proxy's forwarders).
	Index int
	// origins is AllowedOrigins in canonical form.
	origins map[string]struct{}
	// limiters are the RateLimit buckets; nil without a rate limit.
	limiters *limiters
}

// hostRoutes are the routes of one host, longest prefix first.
type hostRoutes struct {
	// exact maps a prefix (without trailing slash) to its route; a lookup
	// probes one entry per path segment, so cost does not grow with the
	// number of routes.
	exact map[string]*Route
	root  *Route // prefix "/"

}

// router maps a canonical host and path to exactly one route.
type router struct {
	hosts     map[string]*hostRoutes // exact host (possibly host:port)
	wildcards map[string]*hostRoutes // "example.com" for "*.example.com"
}

func newRouter(routes []*Route) *router {
	rt := &router{hosts: map[string]*hostRoutes{}, wildcards: map[string]*hostRoutes{}}
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].PathPrefix) > len(routes[j].PathPrefix) })
	for _, r := range routes {
		table := rt.hosts
		host := r.Host
		if strings.HasPrefix(host, "*.") {
			table, host = rt.wildcards, host[2:]
		}
		hr := table[host]
		if hr == nil {
			hr = &hostRoutes{exact: map[string]*Route{}}
			table[host] = hr
		}
		prefix := strings.TrimSuffix(r.PathPrefix, "/")
		if prefix == "" {
			if hr.root == nil {
				hr.root = r
			}
			continue
		}
		if _, dup := hr.exact[prefix]; !dup {
			hr.exact[prefix] = r
		}
	}
	return rt
}

// match finds the route for a canonical host and path. A host with a
// non-default port matches a route for that host:port first, then the
// route for the bare host name.
func (rt *router) match(host, path string) *Route {
	if hr := rt.hosts[host]; hr != nil {
		if r := hr.match(path); r != nil {
			return r
		}
	}
	name := hostWithoutPort(host)
	if name != host {
		if hr := rt.hosts[name]; hr != nil {
			if r := hr.match(path); r != nil {
				return r
			}
		}
	}
	for i := strings.IndexByte(name, '.'); i >= 0; i = strings.IndexByte(name, '.') {
		name = name[i+1:]
		if hr := rt.wildcards[name]; hr != nil {
			if r := hr.match(path); r != nil {
				return r
			}
		}
	}
	// "*" (a sidecar's implicit route) matches any host.
	if hr := rt.hosts["*"]; hr != nil {
		return hr.match(path)
	}
	return nil
}

// match probes the path and each of its ancestors, longest first.
func (hr *hostRoutes) match(path string) *Route {
	if len(hr.exact) > 0 {
		p := strings.TrimSuffix(path, "/")
		for p != "" {
			if r, ok := hr.exact[p]; ok {
				return r
			}
			i := strings.LastIndexByte(p, '/')
			if i <= 0 {
				break
			}
			p = p[:i]
		}
	}
	return hr.root
}
