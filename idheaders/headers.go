package idheaders

import (
	"net/http"
	"slices"
	"strings"
)

// Identity headers the proxy sets on forwarded requests.
const (
	User      = "X-Ztp-User"
	Email     = "X-Ztp-Email"
	Groups    = "X-Ztp-Groups"
	Assertion = "X-Ztp-Assertion"
	Device    = "X-Ztp-Device"
	RequestID = "X-Request-Id"
)

// clientCertHeaders are names other proxies use to pass a verified client
// certificate; a client must never be able to set them. Compared after
// normalisation (lower case, "_" → "-").
var clientCertHeaders = []string{
	"x-client-cert", "x-client-certificate", "x-forwarded-client-cert",
	"x-ssl-client-cert", "x-ssl-client-verify", "x-ssl-client-dn", "x-ssl-client-s-dn",
	"x-ssl-client-i-dn", "x-ssl-client-fingerprint", "x-ssl-cert", "ssl-client-cert",
	"ssl-client-verify", "x-arr-clientcert", "x-amzn-mtls-clientcert",
	"x-amzn-mtls-clientcert-leaf", "x-amzn-oidc-data", "x-amzn-oidc-identity",
	"x-amzn-oidc-accesstoken", "x-forwarded-user", "x-forwarded-email",
	"x-forwarded-groups", "x-forwarded-preferred-username", "x-forwarded-access-token",
	"x-auth-request-user", "x-auth-request-email", "x-auth-request-groups",
	"x-auth-request-access-token", "x-remote-user", "remote-user",
}

// forwardingHeaders describe the path a request took; they are believed
// only from trusted proxies.
var forwardingHeaders = []string{
	"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
	"x-forwarded-port", "x-forwarded-prefix", "x-forwarded-uri", "x-forwarded-method",
	"x-forwarded-server", "x-real-ip", "x-original-url", "x-original-uri",
	"x-original-method", "x-original-host", "x-rewrite-url", "true-client-ip",
	"cf-connecting-ip", "x-client-ip", "x-cluster-client-ip",
	// The W3C trace context (issue 19): an untrusted client must not pick
	// the trace its request joins, nor force sampling.
	"traceparent", "tracestate", "baggage",
}

// NormalizeName lower-cases a header name and maps "_" to "-", the
// way CGI-style upstreams (PHP, WSGI, Rack) merge the two spellings.
func NormalizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// IsOwned reports whether a normalised header name belongs to the
// proxy (or to a trust boundary the proxy stands for) and so must never
// pass from a client to an upstream.
func IsOwned(norm string, fromTrustedProxy bool) bool {
	if strings.HasPrefix(norm, "x-ztp-") || norm == "x-ztp" {
		return true
	}
	for _, h := range clientCertHeaders {
		if norm == h {
			return true
		}
	}
	if !fromTrustedProxy {
		for _, h := range forwardingHeaders {
			if norm == h {
				return true
			}
		}
	}
	return false
}

// framingHeaders are the normalised names of the hop-by-hop headers that
// frame a message and contain a "-". Spelled with "_" (Transfer_Encoding)
// they are other headers to ztproxy but the framing header itself to a
// CGI-style upstream that merges the spellings: forwarded, one would
// desynchronise the upstream connection (request smuggling, issue 12.5).
var framingHeaders = []string{"transfer-encoding", "content-length", "keep-alive", "proxy-connection"}

// IsDisguisedFraming reports whether name is a framing header
// spelled with "_"; norm is its normalised form.
func IsDisguisedFraming(name, norm string) bool {
	return strings.IndexByte(name, '_') >= 0 && slices.Contains(framingHeaders, norm)
}

// NeedsNormalising is a cheap pre-check: a header can only be owned or a
// disguised framing header if its first byte is x, X, f, F, s, S, t, T,
// c, C, r, R, k, K, p, P, b or B.
func NeedsNormalising(name string) bool {
	if name == "" {
		return false
	}
	switch name[0] {
	case 'x', 'X', 'f', 'F', 's', 'S', 't', 'T', 'c', 'C', 'r', 'R', 'k', 'K', 'p', 'P', 'b', 'B':
		return true
	}
	return false
}

// Sanitize removes every header the client must not control. It
// returns the number removed (for tests and debugging).
func Sanitize(h http.Header, fromTrustedProxy bool) int {
	removed := 0
	for name := range h {
		if !NeedsNormalising(name) {
			continue
		}
		if norm := NormalizeName(name); IsOwned(norm, fromTrustedProxy) || IsDisguisedFraming(name, norm) {
			delete(h, name)
			removed++
		}
	}
	return removed
}

// RemoveCookie deletes the named cookies from a Cookie header set,
// keeping every other cookie byte for byte.
func RemoveCookie(h http.Header, names ...string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	kept := lines[:0]
	for _, line := range lines {
		var b strings.Builder
		for part := range strings.SplitSeq(line, ";") {
			trimmed := strings.TrimSpace(part)
			if trimmed == "" {
				continue
			}
			name, _, _ := strings.Cut(trimmed, "=")
			if cookieNameMatches(name, names) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(trimmed)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// cookieNameMatches matches a cookie name or one of its numbered chunks
// ("name", "name_1", …).
func cookieNameMatches(name string, names []string) bool {
	for _, n := range names {
		if name == n || (strings.HasPrefix(name, n+"_") && isDigits(name[len(n)+1:])) {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// HasCookie reports whether the Cookie header carries one of names (or a
// numbered chunk of one).
func HasCookie(h http.Header, names ...string) bool {
	for _, line := range h["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if cookieNameMatches(name, names) {
				return true
			}
		}
	}
	return false
}

// SafeValue drops bytes that are not allowed in a header value, so a
// claim with a control character cannot break or smuggle headers.
func SafeValue(v string) string {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return -1
				}
				return r
			}, v)
		}
	}
	return v
}
