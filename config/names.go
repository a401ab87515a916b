package config

import (
	"errors"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

var (
	routeNamePattern = regexp.MustCompile(`^[a-z0-9_-]+$`)
	idpNamePattern   = regexp.MustCompile(`^[a-z0-9-]+$`)
)

// urlRules say what checkURL accepts besides an absolute URL with a host.
type urlRules struct {
	// secure requires https, allowing http only to loopback hosts (local
	// development and tests).
	secure bool
	// noPath refuses any path other than "/".
	noPath bool
	// noQuery refuses a query string.
	noQuery bool
	// h2c also accepts h2c:// (cleartext HTTP/2 upstreams).
	h2c bool
}

// checkURL parses raw and returns the problem with it, or "". Messages do
// not repeat the URL, which may carry credentials.
func checkURL(raw string, rules urlRules) (*url.URL, string) {
	want := "an absolute http(s) URL"
	if rules.secure {
		want = "an absolute https URL"
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return nil, "must be " + want
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && !rules.secure:
	case u.Scheme == "h2c" && rules.h2c:
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return nil, "must use https (http is allowed only for loopback hosts)"
	default:
		return nil, "must be " + want
	}
	switch {
	case u.User != nil:
		return nil, "must not contain credentials"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, "must not have a fragment"
	case rules.noQuery && (u.RawQuery != "" || u.ForceQuery):
		return nil, "must not have a query"
	case rules.noPath && u.Path != "" && u.Path != "/":
		return nil, "must not have a path"
	}
	return u, ""
}

// isLoopbackHost reports whether host names this machine.
func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// canonicalRouteHost returns the canonical form of a route's host: lower
// case, no trailing dot, and no port when it is the listener's default
// (443 with TLS, 80 without). "*.example.com" is the only pattern form.
// This must agree with the canonical request host the router compares
// against.
func canonicalRouteHost(raw string, tls bool) (string, error) {
	if strings.Contains(raw, "/") {
		return "", errors.New("must be a host name, not a URL")
	}
	host, port, hasPort := strings.ToLower(raw), "", false
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", errors.New("missing ] in IPv6 address")
		}
		rest := host[end+1:]
		if rest != "" && !strings.HasPrefix(rest, ":") {
			return "", errors.New("unexpected text after IPv6 address")
		}
		host, port, hasPort = host[:end+1], strings.TrimPrefix(rest, ":"), rest != ""
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", errors.New("malformed IPv6 address")
		}
	} else {
		if strings.Count(host, ":") > 1 {
			return "", errors.New("IPv6 addresses must be in brackets, such as [::1]")
		}
		if i := strings.IndexByte(host, ':'); i >= 0 {
			host, port, hasPort = host[:i], host[i+1:], true
		}
		host = strings.TrimSuffix(host, ".")
		name := strings.TrimPrefix(host, "*.")
		if err := checkHostName(name); err != nil {
			return "", err
		}
	}
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '0' || port[0] == '-' {
			return "", errors.New("port must be a number from 1 to 65535")
		}
	}
	if port == "" || (tls && port == "443") || (!tls && port == "80") {
		return host, nil
	}
	return host + ":" + port, nil
}

// checkHostName checks a DNS name or IPv4 address without port or
// wildcard. Underscores are accepted because internal names use them.
func checkHostName(name string) error {
	if name == "" {
		return errors.New("empty host name")
	}
	if len(name) > 253 {
		return errors.New("host name longer than 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("malformed host name: labels are 1 to 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("malformed host name: a label starts or ends with -")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c >= 0x80 {
				return errors.New("non-ASCII host name: use its xn-- (punycode) form")
			}
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || 'A' <= c && c <= 'Z') {
				return errors.New("malformed host name: only letters, digits, - and _ are allowed")
			}
		}
	}
	return nil
}

// canonicalPathPrefix checks a route's path prefix and returns it without
// a trailing slash ("/" stays "/"), since prefixes match on segment
// boundaries either way. Anything an upstream could read differently from
// the router is refused rather than cleaned: escapes, "//", "." and ".."
// segments, backslashes, control characters, "?" and "#".
func canonicalPathPrefix(raw string) (string, error) {
	if raw == "" {
		return "/", nil
	}
	if raw[0] != '/' {
		return "", errors.New(`must start with "/"`)
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '%':
			return "", errors.New(`must not contain "%": write the decoded path`)
		case c == '\\', c == '?', c == '#', c <= ' ', c == 0x7f:
			return "", errors.New("must not contain \\, ?, #, spaces or control characters")
		case c == ';':
			return "", errors.New(`must not contain ";": requests are routed on the path without ;parameters`)
		}
	}
	if strings.Contains(raw, "//") {
		return "", errors.New(`must not contain "//"`)
	}
	for seg := range strings.SplitSeq(raw, "/") {
		if seg == "." || seg == ".." {
			return "", errors.New(`must not contain "." or ".." segments`)
		}
	}
	if raw != "/" {
		raw = strings.TrimSuffix(raw, "/")
	}
	return raw, nil
}
