package forwardauth

import (
	"net/http"
	"net/url"
	"strings"

	"ztproxy/decide"
	"ztproxy/identity"
)

// Headers a front proxy uses to describe the request it is asking about.
// nginx (auth_request) sends an absolute URL; Traefik (ForwardAuth) and
// Caddy (forward_auth) send the parts.
const (
	headerOriginalURL    = "X-Original-Url"
	headerOriginalMethod = "X-Original-Method"
	headerForwardedMeth  = "X-Forwarded-Method"
	headerForwardedHost  = "X-Forwarded-Host"
	headerForwardedURI   = "X-Forwarded-Uri"
	headerForwardedProto = "X-Forwarded-Proto"
)

// originalRequest is the request a front proxy asks /.ztp/verify about.
type originalRequest struct {
	method string
	scheme string // "http" or "https"
	host   string // as the client sent it (port included)
	url    *url.URL
}

func badOriginal(msg string) error {
	return &decide.Error{Status: http.StatusBadRequest, Code: "bad_original_request", Msg: msg}
}

// parseOriginal reads the original request from the front proxy's headers.
// Exactly one style must be present: a client behind Traefik can add
// X-Original-URL (Traefik copies client headers to the auth request), and
// a client behind nginx can add X-Forwarded-Uri; if both styles were
// accepted with a precedence, a client could make the decision be about a
// request it is not making. Ambiguity is refused instead.
func parseOriginal(h http.Header) (originalRequest, error) {
	nginxStyle := len(h[headerOriginalURL]) > 0 || len(h[headerOriginalMethod]) > 0
	forwardedStyle := len(h[headerForwardedURI]) > 0 || len(h[headerForwardedMeth]) > 0
	switch {
	case nginxStyle && forwardedStyle:
		return originalRequest{}, badOriginal("both X-Original-* and X-Forwarded-Method/Uri are present; send one style")
	case nginxStyle:
		return parseOriginalURL(h)
	case forwardedStyle:
		return parseForwarded(h)
	}
	return originalRequest{}, badOriginal("the original request is missing: send X-Original-Method and X-Original-URL, or X-Forwarded-Method, -Proto, -Host and -Uri")
}

// parseOriginalURL reads nginx's X-Original-Method and X-Original-URL
// ($scheme://$http_host$request_uri).
func parseOriginalURL(h http.Header) (originalRequest, error) {
	method, err := single(h, headerOriginalMethod)
	if err != nil {
		return originalRequest{}, err
	}
	raw, err := single(h, headerOriginalURL)
	if err != nil {
		return originalRequest{}, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return originalRequest{}, badOriginal("X-Original-URL is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return originalRequest{}, badOriginal("X-Original-URL must be an absolute http or https URL without user info or fragment")
	}
	if !strings.HasPrefix(u.EscapedPath(), "/") {
		return originalRequest{}, badOriginal("X-Original-URL must have an absolute path")
	}
	return newOriginal(method, u.Scheme, u.Host, u)
}

// parseForwarded reads Traefik's and Caddy's X-Forwarded-Method, -Proto,
// -Host and -Uri (the request URI: path and query).
func parseForwarded(h http.Header) (originalRequest, error) {
	var vals [4]string
	for i, name := range [...]string{headerForwardedMeth, headerForwardedProto, headerForwardedHost, headerForwardedURI} {
		v, err := single(h, name)
		if err != nil {
			return originalRequest{}, err
		}
		vals[i] = v
	}
	method, scheme, host, uri := vals[0], vals[1], vals[2], vals[3]
	if scheme != "http" && scheme != "https" {
		return originalRequest{}, badOriginal("X-Forwarded-Proto must be http or https")
	}
	if !strings.HasPrefix(uri, "/") {
		return originalRequest{}, badOriginal("X-Forwarded-Uri must be a request URI starting with /")
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return originalRequest{}, badOriginal("X-Forwarded-Uri is not a request URI")
	}
	u.Scheme, u.Host = scheme, host
	return newOriginal(method, scheme, host, u)
}

func newOriginal(method, scheme, host string, u *url.URL) (originalRequest, error) {
	if !identity.ValidMethod(method) {
		// Issue 12.4: the same canonical method as a proxied request.
		return originalRequest{}, badOriginal("the original method is not an upper-case HTTP method")
	}
	if decide.CanonicalHost(host, scheme == "https") == "" {
		return originalRequest{}, badOriginal("the original host is missing or malformed")
	}
	return originalRequest{method: method, scheme: scheme, host: host, url: u}, nil
}

// single returns the one value of a header; absent, empty or repeated is
// an error (two values would leave the decision ambiguous).
func single(h http.Header, name string) (string, error) {
	v := h[name]
	// Only HTTP's optional whitespace is trimmed (RFC 9110 §5.6.3); other
	// control bytes stay and make the value malformed.
	if len(v) != 1 || strings.Trim(v[0], " \t") == "" {
		if len(v) > 1 {
			return "", badOriginal(name + " is repeated")
		}
		return "", badOriginal(name + " is missing")
	}
	return strings.Trim(v[0], " \t"), nil
}
