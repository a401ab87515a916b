package decide

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
)

// errBadPath is returned for request paths that are ambiguous or try to
// escape their route: encoded slashes, semicolons or backslashes, NUL,
// dot-dot segments (also hidden behind ";parameters") and malformed
// escapes.
var errBadPath = errors.New("malformed or ambiguous request path")

// CanonicalHost lower-cases host, removes a trailing dot and drops the
// port when it is the default one for the scheme. It returns "" for an
// unusable host: anything but a DNS name or IPv4 address of letters,
// digits, "-", "_" and ".", or a bracketed IPv6 address without zone;
// a port that is not 1–65535 written without sign or leading zero.
func CanonicalHost(host string, tls bool) string {
	if host == "" || len(host) > 260 {
		return ""
	}
	name, port, hasPort := host, "", false
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return ""
		}
		rest := host[end+1:]
		if rest != "" && rest[0] != ':' {
			return ""
		}
		name, port, hasPort = host[:end+1], strings.TrimPrefix(rest, ":"), rest != ""
		addr, err := netip.ParseAddr(name[1:end])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return ""
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		name, port, hasPort = host[:i], host[i+1:], true
	}
	if !strings.HasPrefix(name, "[") {
		name = strings.TrimSuffix(name, ".")
		if !isHostName(name) {
			return ""
		}
	}
	name = asciiLower(name)
	if hasPort && !isPort(port) {
		return ""
	}
	if port == "" || (tls && port == "443") || (!tls && port == "80") {
		return name
	}
	return name + ":" + port
}

// isHostName reports whether name is made of DNS labels of letters,
// digits, "-" and "_" (internal names use it), as route hosts are.
func isHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	prevDot := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		prevDot = false
	}
	return !prevDot
}

// isPort reports whether p is empty (a Host of "name:") or a port number
// 1–65535 without sign or leading zero.
func isPort(p string) bool {
	if p == "" {
		return true
	}
	if len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
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

// RequestPath is a request path in the two forms the proxy uses.
type RequestPath struct {
	// Match is the canonical path without ";parameters": the router and
	// the policy (context.http.path) see it.
	Match string
	// Forward is the canonical path with the parameters kept, which the
	// upstream receives. It equals Match when Params is false.
	Forward string
	// Params reports that a segment carried ";parameters"; only routes
	// with allow_path_parameters accept such a path.
	Params bool
}

// RawPath returns the path of a parsed request target exactly as the
// client sent it. url.URL.EscapedPath re-escapes the decoded path when
// the raw one has bytes it would have escaped (a "{", a space), turning
// "%3B" into ";" and "%2F" into "/" on the way; the raw form is what an
// upstream behind a forward-auth front proxy receives, so it is what is
// judged.
func RawPath(u *url.URL) string {
	// url.setPath keeps RawPath whenever the raw form differs from the
	// default escaping of Path, valid or not.
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.EscapedPath()
}

// ParseRequestPath decodes the escaped request path and returns the
// single path the router and policy see and the one the upstream
// receives. Repeated slashes and "." segments are resolved; anything an
// upstream could read another way is refused: encoded "/", "\", "%" or
// ";", literal "\" or "#", NUL or other control bytes, invalid escapes, ".."
// segments (browsers never send them, so a ".." is an attack or a bug),
// and "." or ".." segments carrying parameters ("..;x", which servlet
// containers read as ".."). A literal ";" starts a segment's parameters,
// as servlet containers and RFC 3986 read it; the parameters are left out
// of match and kept in forward.
func ParseRequestPath(escaped string) (RequestPath, error) {
	if escaped == "" {
		return RequestPath{Match: "/", Forward: "/"}, nil
	}
	if escaped[0] != '/' {
		return RequestPath{}, errBadPath
	}
	// Fast path: nothing to decode, clean or split off.
	if isCleanPath(escaped) {
		return RequestPath{Match: escaped, Forward: escaped}, nil
	}
	var match, forward strings.Builder
	match.Grow(len(escaped))
	forward.Grow(len(escaped))
	var rp RequestPath
	seg := make([]byte, 0, 64)
	// last is the kind of the last segment: a "" or "." segment and a
	// parameters-only one (";jsessionid=…") leave the path naming a
	// directory, so match ends in "/"; forward keeps the
	// parameters-only segment itself.
	const (
		named = iota
		paramsOnly
		skipped
	)
	last := named
	for rest, more := escaped[1:], true; more; {
		var raw string
		raw, rest, more = strings.Cut(rest, "/")
		var err error
		if seg, err = decodeSegment(raw, seg[:0]); err != nil {
			return RequestPath{}, err
		}
		name, params, hasParams := strings.Cut(string(seg), ";")
		switch {
		case name == ".." || hasParams && name == ".":
			return RequestPath{}, errBadPath
		case name == "." || name == "" && !hasParams:
			last = skipped
			continue
		case name == "":
			last = paramsOnly
		default:
			last = named
			match.WriteByte('/')
			match.WriteString(name)
		}
		forward.WriteByte('/')
		forward.WriteString(name)
		if hasParams {
			rp.Params = true
			forward.WriteByte(';')
			forward.WriteString(params)
		}
	}
	if match.Len() == 0 || last != named {
		match.WriteByte('/')
	}
	if forward.Len() == 0 || last == skipped {
		forward.WriteByte('/')
	}
	rp.Match, rp.Forward = match.String(), forward.String()
	return rp, nil
}

// decodeSegment percent-decodes one raw path segment into buf, refusing
// what could be read two ways: an escaped "/", "\", "%" or ";", a literal
// "\" or "#", or a control byte.
func decodeSegment(raw string, buf []byte) ([]byte, error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '#':
			// A literal "#" starts a fragment to many URL parsers (Node's,
			// for one), which would route on the path before it.
			return nil, errBadPath
		case '%':
			if i+2 >= len(raw) {
				return nil, errBadPath
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return nil, errBadPath
			}
			c = hi<<4 | lo
			if c == '/' || c == '\\' || c == '%' || c == ';' {
				return nil, errBadPath
			}
			i += 2
		}
		if c < 0x20 || c == 0x7f || c == '\\' {
			return nil, errBadPath
		}
		buf = append(buf, c)
	}
	return buf, nil
}

// isCleanPath reports whether p needs no decoding, cleaning or splitting
// of parameters.
func isCleanPath(p string) bool {
	prevSlash := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%' || c == '\\' || c == ';' || c == '#' || c < 0x20 || c == 0x7f:
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

// StripPathSegments removes the first n named segments of a canonical
// forward path (strip_prefix with a prefix of n segments), together with
// any parameters-only segments among them, and returns what is left,
// always starting with "/".
func StripPathSegments(p string, n int) string {
	rest := p
	for n > 0 && rest != "" {
		seg, _, _ := strings.Cut(rest[1:], "/")
		rest = rest[1+len(seg):]
		if seg != "" && seg[0] != ';' {
			n--
		}
	}
	if rest == "" {
		return "/"
	}
	return rest
}
