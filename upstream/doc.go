// Package upstream owns how ztproxy talks to the services behind it: the
// lean HTTP/1.1 transport for plain http:// upstreams, the tuned net/http
// Transport it falls back to (https, bodies, upgrades) and the choice
// between them (Mode, routes[].upstream_transport). The load balancing
// and health checks of a route's upstreams belong here too.
//
// It knows nothing of routes, identities or decisions and imports no
// other ztproxy package; it is never less safe than net/http (the hostile
// upstream corpus runs against both).
package upstream
