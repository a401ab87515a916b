package authn

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// maxReturnToBytes bounds a return URL; longer ones are not worth the
// cookie space and fall back to the default.
const maxReturnToBytes = 2048

// maxPercentDecodeRounds is how many layers of percent-encoding are peeled
// off when looking for hidden slashes and control characters, so that
// double encoding (%252F) aimed at a second decoder is caught too.
const maxPercentDecodeRounds = 3

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
//     whose canonical host (lower case, no trailing dot) allowedHosts accepts.
//     A non-default port is passed as host:port, so only ports allowedHosts
//     names explicitly are accepted.
//
// It is deliberately stricter than browsers: a legitimate but odd URL only
// costs the user a redirect to defaultURL, while a permissive rule is an
// open redirect.
func SafeReturnTo(raw string, allowedHosts func(host string) bool, defaultURL string) string {
	if len(raw) == 0 || len(raw) > maxReturnToBytes || !plainASCII(raw) || !decodesCleanly(raw) {
		return defaultURL
	}
	if raw[0] == '/' {
		if safeRelativeReturnTo(raw) {
			return raw
		}
		return defaultURL
	}
	if allowedHosts != nil && safeAbsoluteReturnTo(raw, allowedHosts) {
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

// safeAbsoluteReturnTo checks an absolute return URL against allowedHosts.
func safeAbsoluteReturnTo(raw string, allowedHosts func(host string) bool) bool {
	var scheme, defaultPort string
	switch {
	case strings.HasPrefix(raw, "https://"):
		scheme, defaultPort = "https", "443"
	case strings.HasPrefix(raw, "http://"):
		scheme, defaultPort = "http", "80"
	default:
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
	if port == "" || port == defaultPort {
		return allowedHosts(host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return false
	}
	return allowedHosts(net.JoinHostPort(host, port))
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
