package config

// The values of server.upstream_transport and routes[].upstream_transport.
const (
	// UpstreamTransportLean is ztproxy's HTTP/1.1 client for body-less
	// requests to http:// upstreams (the rest goes to net/http's).
	UpstreamTransportLean = "lean"
	// UpstreamTransportStandard sends every request through net/http's
	// Transport: the escape hatch should the lean one misbehave with an
	// upstream.
	UpstreamTransportStandard = "standard"
)

// checkUpstreamTransport checks a transport choice; inherit allows ""
// (a route taking the server's).
func checkUpstreamTransport(c *collector, path, v string, inherit bool) {
	switch {
	case v == UpstreamTransportLean, v == UpstreamTransportStandard, inherit && v == "":
	case inherit:
		c.add(path, "must be lean, standard or empty (inherit server.upstream_transport), not %q", v)
	default:
		c.add(path, "must be lean or standard, not %q", v)
	}
}

// routeUpstreamTransport is the transport a route uses.
func routeUpstreamTransport(server, route string) string {
	if route != "" {
		return route
	}
	return server
}
