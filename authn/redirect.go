package authn

import (
	"net/netip"
	"net/url"
	"strings"
)

// maxReturnToBytes bounds a return URL; longer ones are not worth the
// cookie space and fall back to the default.
const maxReturnToBytes = 2048

// maxPercentDecodeRounds is how many layers of percent-encoding are peeled
// off when looking for hidden slashes and control characters, so that
// double encoding (%252F) aimed at a second decoder is caught too.
const maxPercentDecodeRounds = 3

// ReturnTargets says which absolute URLs a signed-in browser may be sent
// back to: URLs on the proxy's external origin's scheme and port whose host
// name HostAllowed accepts. Routes are served on the external listener, so
// no other port of a configured host is ever a legitimate return target.
type ReturnTargets struct {
	// Scheme is the external origin's scheme, "https" or "http".
	Scheme string
	// Port is the external origin's port: explicit in external_url, or
	// the default port of Scheme.
	Port string
	// HostAllowed reports whether a canonical host name (lower case, no
	// trailing dot, no port, IPv6 without brackets) is the external host
	// or a route host. Nil accepts no absolute URL.
	HostAllowed func(host string) bool
}

// ReturnTargetsFor is the ReturnTargets of an external origin.
func ReturnTargetsFor(external *url.URL, hostAllowed func(host string) bool) ReturnTargets {
	if external == nil {
		return ReturnTargets{}
	}
	t := ReturnTargets{Scheme: external.Scheme, Port: external.Port(), HostAllowed: hostAllowed}
	if t.Port == "" {
		t.Port = defaultPort(t.Scheme)
	}
	return t
}

// defaultPort is the port a URL of scheme has when it names none.
func defaultPort(scheme string) string {
	switch scheme {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// SafeReturnTo returns raw if it is safe to redirect a signed-in browser
// to, and defaultURL otherwise. Safe means either
//
//   - a relative path that no browser or later decoder can read as another
//     origin: it starts with exactly one "/", contains no backslash, space,
//     control or non-ASCII character, and even after percent-decoding has no
//     leading "//" or "/\", no control characters, no empty or dot segments
//     in the path and no non-ASCII character right after the first "/"; or
//   - an absolute URL written with a lower-case "https://" (or "http://" for
//     a loopback host) without userinfo or percent-encoding in its authority,
//     whose scheme and port (explicit or default) are the external origin's
//     and whose canonical host (lower case, no trailing dot) the targets'
//     HostAllowed accepts.
//
// It is deliberately stricter than browsers: a legitimate but odd URL only
// costs the user a redirect to defaultURL, while a permissive rule is an
// open redirect.
func SafeReturnTo(raw string, targets ReturnTargets, defaultURL string) string {
	if len(raw) == 0 || len(raw) > maxReturnToBytes || !plainASCII(raw) || !decodesCleanly(raw) {
		return defaultURL
	}
	if raw[0] == '/' {
		if safeRelativeReturnTo(raw) {
			return raw
		}
		return defaultURL
	}
	if targets.HostAllowed != nil && safeAbsoluteReturnTo(raw, targets) {
		return raw
	}
	return defaultURL
}

// plainASCII reports whether s consists of visible ASCII characters other
// than the backslash, which browsers treat as "/" in special URLs.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '\\' {
			return false
		}
	}
	return true
}

// decodesCleanly reports whether every layer of percent-decoding of s is
// well formed and free of control characters.
func decodesCleanly(s string) bool {
	for range maxPercentDecodeRounds {
		if !strings.Contains(s, "%") {
			return true
		}
		decoded, err := url.PathUnescape(s) // %XX only: "+" stays "+"
		if err != nil {
			return false
		}
		for i := 0; i < len(decoded); i++ {
			if decoded[i] < ' ' || decoded[i] == 0x7f {
				return false
			}
		}
		s = decoded
	}
	return !strings.Contains(s, "%")
}

// safeRelativeReturnTo checks a return URL that starts with "/".
func safeRelativeReturnTo(raw string) bool {
	if len(raw) > 1 && raw[1] == '/' {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	path := raw
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for range maxPercentDecodeRounds + 1 {
		if !safeDecodedPath(path) {
			return false
		}
		decoded, err := url.PathUnescape(path)
		if err != nil {
			return false
		}
		if decoded == path {
			return true
		}
		path = decoded
	}
	return false
}

// safeDecodedPath checks one decoding layer of a relative path: one leading
// slash, no backslash, no empty or dot segment that a normalizer could
// collapse into "//", and no non-ASCII character (a fullwidth solidus, for
// instance) where a normalizer could turn it into a second slash.
func safeDecodedPath(path string) bool {
	if path == "" || path[0] != '/' || strings.ContainsRune(path, '\\') {
		return false
	}
	if len(path) > 1 && path[1] == '/' {
		return false
	}
	if len(path) > 1 && path[1] >= 0x80 {
		return false
	}
	rest := path[1:]
	for rest != "" {
		var segment string
		segment, rest, _ = strings.Cut(rest, "/")
		switch segment {
		case ".", "..":
			return false
		case "":
			// An empty segment is only fine as the trailing slash.
			return rest == ""
		}
	}
	return true
}

// safeAbsoluteReturnTo checks an absolute return URL against targets.
func safeAbsoluteReturnTo(raw string, targets ReturnTargets) bool {
	var scheme string
	switch {
	case strings.HasPrefix(raw, "https://"):
		scheme = "https"
	case strings.HasPrefix(raw, "http://"):
		scheme = "http"
	default:
		return false
	}
	if scheme != targets.Scheme {
		return false
	}
	authority := raw[len(scheme)+3:]
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	if authority == "" || strings.ContainsAny(authority, "@%") || strings.HasSuffix(authority, ":") {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host != authority {
		return false
	}
	host, ok := canonicalReturnHost(u.Hostname())
	if !ok {
		return false
	}
	if scheme == "http" && !isLoopbackHost(host) {
		return false
	}
	port := u.Port()
	if port == "" {
		port = defaultPort(scheme)
	}
	if port != targets.Port {
		// Issue 12.8: a configured host on any other port (a wildcard
		// route's subdomain included) is not where the proxy serves it.
		return false
	}
	return targets.HostAllowed(host)
}

// canonicalReturnHost lower-cases host and drops one trailing dot. It
// accepts IP addresses without zones and DNS names of letters, digits, "-"
// and "_" in non-empty labels; anything else (including IDN in Unicode
// form, which url.Parse would otherwise pass through) is refused.
func canonicalReturnHost(host string) (string, bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return "", false
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return host, addr.Zone() == ""
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
				return "", false
			}
		}
	}
	return host, true
}
