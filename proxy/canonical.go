package proxy

import (
	"errors"
	"strings"
)

// errBadPath is returned for request paths that are ambiguous or try to
// escape their route: encoded slashes, backslashes, NUL, dot-dot segments
// and malformed escapes.
var errBadPath = errors.New("malformed or ambiguous request path")

// canonicalHost lower-cases host, removes a trailing dot and drops the
// port when it is the default one for the scheme. It returns "" for an
// unusable host.
func canonicalHost(host string, tls bool) string {
	if host == "" {
		return ""
	}
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return ""
		}
		name, port = host[:end+1], strings.TrimPrefix(host[end+1:], ":")
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i+1:]
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || strings.ContainsAny(name, "/\\@ \t%") {
		return ""
	}
	name = asciiLower(name)
	if port == "" || (tls && port == "443") || (!tls && port == "80") {
		return name
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return ""
		}
	}
	return name + ":" + port
}

// hostWithoutPort returns the host name part of a canonical host.
func hostWithoutPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end >= 0 {
			return host[:end+1]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// canonicalPath decodes the escaped request path and returns the single
// path the policy is evaluated on and the upstream receives. Dot segments
// and repeated slashes are resolved; anything that could be read two ways
// by an upstream is refused: encoded "/" or "\", literal "\", NUL or other
// control bytes, invalid escapes and ".." segments (browsers never send
// them, so a ".." is an attack or a bug).
func canonicalPath(escaped string) (string, error) {
	if escaped == "" {
		return "/", nil
	}
	if escaped[0] != '/' {
		return "", errBadPath
	}
	// Fast path: nothing to decode or clean.
	if isCleanPath(escaped) {
		return escaped, nil
	}
	decoded := make([]byte, 0, len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' {
			if i+2 >= len(escaped) {
				return "", errBadPath
			}
			hi, ok1 := unhex(escaped[i+1])
			lo, ok2 := unhex(escaped[i+2])
			if !ok1 || !ok2 {
				return "", errBadPath
			}
			c = hi<<4 | lo
			if c == '/' || c == '\\' || c == '%' {
				return "", errBadPath
			}
			i += 2
		}
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "", errBadPath
		}
		decoded = append(decoded, c)
	}
	return cleanSegments(string(decoded))
}

// isCleanPath reports whether p needs no decoding or cleaning.
func isCleanPath(p string) bool {
	prevSlash := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%' || c == '\\' || c < 0x20 || c == 0x7f:
			return false
		case c == '/':
			if prevSlash {
				return false
			}
			prevSlash = true
			continue
		case c == '.' && prevSlash:
			// "/." starts a dot segment if followed by "/", "." or end.
			if i+1 == len(p) || p[i+1] == '/' || p[i+1] == '.' {
				return false
			}
		}
		prevSlash = false
	}
	return true
}

// cleanSegments collapses repeated slashes, drops "." segments and refuses
// ".." segments. A trailing slash is kept.
func cleanSegments(p string) (string, error) {
	var b strings.Builder
	b.Grow(len(p))
	trailing := strings.HasSuffix(p, "/")
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			return "", errBadPath
		}
		b.WriteByte('/')
		b.WriteString(seg)
	}
	if b.Len() == 0 {
		return "/", nil
	}
	if trailing {
		b.WriteByte('/')
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// pathHasPrefix reports whether path is within prefix on a segment
// boundary: "/api" contains "/api" and "/api/x" but not "/apix".
func pathHasPrefix(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}
