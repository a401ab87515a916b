package decide

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ambientCredential is a credential a browser attaches to a request on
// its own, whichever page started it: a cross-site page can make the
// browser open a WebSocket with it (cross-site WebSocket hijacking).
type ambientCredential uint8

const (
	noAmbient        ambientCredential = iota
	cookieCredential                   // the session cookie (auth: browser)
	certCredential                     // a client certificate (auth: mtls, sidecar)
)

// maxOriginBytes bounds an Origin value: a scheme, a 253-byte host and a
// port fit well within it.
const maxOriginBytes = 300

var (
	// errOrigin: issue 12.6, a WebSocket handshake authenticated by an
	// ambient credential from a page of another origin.
	errOrigin = &Error{Status: http.StatusForbidden, Code: "origin_not_allowed",
		Msg: "this WebSocket connection comes from a page of an origin the route does not allow"}
	errOriginMissing = &Error{Status: http.StatusForbidden, Code: "origin_required",
		Msg: "a WebSocket connection to this route must come from a browser page (Origin is required)"}
)

// checkWebSocketOrigin refuses a WebSocket handshake authenticated by an
// ambient credential unless its Origin is the route's own origin (the
// scheme, host and port the client used) or one of the route's
// allowed_origins. Browsers always send Origin on a WebSocket handshake,
// so with a session cookie a missing Origin is refused too; with a client
// certificate it is accepted (a service, not a browser). Bearer, assertion
// and public routes carry no ambient credential and are not checked.
func checkWebSocketOrigin(r *http.Request, x *Exchange) error {
	if x.ambient == noAmbient || !isWebSocketHandshake(r) {
		return nil
	}
	values := r.Header["Origin"]
	switch {
	case len(values) == 0 && x.ambient == cookieCredential:
		return errOriginMissing
	case len(values) == 0:
		return nil
	case len(values) > 1:
		return errOrigin
	}
	origin, ok := parseOrigin(values[0])
	if !ok {
		return errOrigin
	}
	if _, listed := x.Route.origins[origin]; listed || isOwnOrigin(origin, r, x) {
		return nil
	}
	return errOrigin
}

// isWebSocketHandshake reports whether r opens a WebSocket: an upgrade,
// or (for forward-auth, whose front proxy may drop the hop-by-hop Upgrade
// and Connection headers before asking) a Sec-WebSocket-Key, a header no
// page can set on an ordinary request.
func isWebSocketHandshake(r *http.Request) bool {
	return IsUpgrade(r) || len(r.Header["Sec-Websocket-Key"]) > 0
}

// isOwnOrigin reports whether origin is the one the client addressed: the
// exchange's scheme with the request's canonical host. A plaintext
// listener also accepts the https origin of the same host, since TLS is
// then terminated in front of ztproxy (a mesh or load balancer) and the
// browser's page is https.
func isOwnOrigin(origin string, r *http.Request, x *Exchange) bool {
	scheme, host, _ := strings.Cut(origin, "://")
	switch {
	case scheme == x.Scheme:
	case scheme == "https" && x.Scheme == "http":
	default:
		return false
	}
	return host == CanonicalHost(r.Host, scheme == "https")
}

// parseOrigin returns the canonical form of an Origin header value or a
// configured origin, "scheme://host[:port]" with the host lower-cased and
// a default port dropped, and false for anything else: "null", another
// scheme, a path, user info, a wildcard.
func parseOrigin(v string) (string, bool) {
	if len(v) > maxOriginBytes {
		return "", false
	}
	scheme, hostport, ok := strings.Cut(v, "://")
	if !ok {
		return "", false
	}
	scheme = asciiLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := CanonicalHost(hostport, scheme == "https")
	if host == "" {
		return "", false
	}
	return scheme + "://" + host, true
}

// CanonicalOrigin returns the canonical form of a configured origin
// (routes[].allowed_origins): scheme, host and optional port, exactly;
// no path, no wildcard.
func CanonicalOrigin(v string) (string, error) {
	o, ok := parseOrigin(v)
	if !ok {
		return "", errors.New(`must be an origin: http:// or https://, a host and an optional port, such as "https://app.example.com" (no path, no wildcard)`)
	}
	return o, nil
}

// compileOrigins turns a route's allowed_origins into a set.
func compileOrigins(list []string) (map[string]struct{}, error) {
	if len(list) == 0 {
		return nil, nil
	}
	set := make(map[string]struct{}, len(list))
	for i, v := range list {
		o, err := CanonicalOrigin(v)
		if err != nil {
			return nil, fmt.Errorf("allowed_origins[%d]: %w", i, err)
		}
		set[o] = struct{}{}
	}
	return set, nil
}
