// Package proxy is the reverse proxy, the front door that forwards: it
// owns the listeners (public, admin, ext_authz), the HTTP/1 framing rules
// every listener applies, and for every request on the public listener it
// asks the decision engine (decide) and acts on the verdict — forwarding
// an allowed request to its route's upstream with the identity headers
// and signed assertion (idheaders), the AWS signature, WebSocket upgrades
// and the route timeout, or writing the refusal (portal.WriteError). The
// /.ztp/ namespace is never forwarded: /.ztp/verify goes to forwardauth,
// the rest to the portal. It holds the serving configuration as one
// immutable snapshot (engine and forwarders) swapped atomically on
// reload.
//
// Its tests drive the whole public listener — reverse proxy, forward-auth,
// ext_authz and portal composed as `serve` runs them — with a real JWT
// issuer and upstream servers.
//
// It imports the decision engine, the other front doors it mounts
// (forwardauth, portal), the upstream transport, the identity headers and
// the metrics; nothing below it may import it, only config and
// cmd/ztproxy.
package proxy
