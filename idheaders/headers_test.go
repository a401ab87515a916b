package idheaders

import (
	"net/http"
	"strings"
	"testing"
)

func TestSanitizeHeaders(t *testing.T) {
	h := http.Header{}
	for _, name := range []string{"X-Ztp-Email", "X_Ztp_Email", "x-ztp-user", "X-ZTP-ASSERTION", "X-Ztp_Groups",
		"X-Forwarded-For", "X_Forwarded_For", "Forwarded", "X-Real-Ip", "X-Forwarded-Client-Cert", "X-Ssl-Client-Cert",
		"X-Amzn-Oidc-Identity", "X-Forwarded-User", "Accept", "X-Custom", "Cookie"} {
		h[name] = []string{"v"}
	}
	Sanitize(h, false)
	for name := range h {
		if n := NormalizeName(name); strings.HasPrefix(n, "x-ztp") || strings.Contains(n, "forward") || n == "x-real-ip" || strings.Contains(n, "client-cert") || strings.Contains(n, "oidc") {
			t.Errorf("header %q survived sanitizing", name)
		}
	}
	for _, keep := range []string{"Accept", "X-Custom", "Cookie"} {
		if h.Get(keep) == "" {
			t.Errorf("header %q was removed", keep)
		}
	}
	trusted := http.Header{"X-Forwarded-For": {"1.2.3.4"}, "X-Ztp-User": {"x"}}
	Sanitize(trusted, true)
	if trusted.Get("X-Forwarded-For") == "" {
		t.Error("X-Forwarded-For from a trusted proxy was removed")
	}
	if trusted.Get("X-Ztp-User") != "" {
		t.Error("X-Ztp-User from a trusted proxy survived: the proxy owns it everywhere")
	}
}

func TestRemoveCookie(t *testing.T) {
	h := http.Header{"Cookie": {"a=1; _ztp_session=secret; b=2", "_ztp_session_1=chunk; _ztp_session_x=keep"}}
	RemoveCookie(h, "_ztp_session")
	got := strings.Join(h["Cookie"], "|")
	if strings.Contains(got, "secret") || strings.Contains(got, "chunk") {
		t.Fatalf("session cookie forwarded: %q", got)
	}
	if got != "a=1; b=2|_ztp_session_x=keep" {
		t.Fatalf("other cookies changed: %q", got)
	}
	h = http.Header{"Cookie": {"_ztp_session=only"}}
	RemoveCookie(h, "_ztp_session")
	if _, ok := h["Cookie"]; ok {
		t.Fatal("empty Cookie header left behind")
	}
}

// FuzzSanitizeHeaders checks that no spelling of an owned header survives.
func FuzzSanitizeHeaders(f *testing.F) {
	for _, s := range []string{"X-Ztp-User", "x_ztp_email", "X-ZTP_assertion", "X-Forwarded-For", "Forwarded", "X-Real-IP", "x-ztp"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, name string, trusted bool) {
		h := http.Header{name: {"spoofed"}}
		Sanitize(h, trusted)
		n := NormalizeName(name)
		if _, ok := h[name]; ok && (strings.HasPrefix(n, "x-ztp-") || n == "x-ztp") {
			t.Fatalf("owned header %q survived", name)
		}
		if _, ok := h[name]; ok && !trusted && n == "x-forwarded-for" {
			t.Fatalf("forwarding header %q from an untrusted peer survived", name)
		}
	})
}

// Issue 12.5 on the upstream hop: a framing header spelled with "_" is
// another header to net/http but the framing header itself to CGI-style
// upstreams that merge "_" and "-".
func TestDisguisedFramingHeadersNotForwarded(t *testing.T) {
	h := http.Header{
		"Transfer_encoding": {"chunked"}, "Content_length": {"0"}, "Keep_alive": {"x"}, "Proxy_connection": {"x"},
		"Transfer-Encoding": {"chunked"}, "Content-Length": {"5"}, "Accept_language": {"en"}, "Connection": {"Upgrade"},
	}
	Sanitize(h, false)
	for _, gone := range []string{"Transfer_encoding", "Content_length", "Keep_alive", "Proxy_connection"} {
		if _, ok := h[gone]; ok {
			t.Errorf("%s forwarded", gone)
		}
	}
	// The real spellings are net/http's to manage, and other underscored
	// headers are the application's.
	for _, kept := range []string{"Transfer-Encoding", "Content-Length", "Accept_language", "Connection"} {
		if _, ok := h[kept]; !ok {
			t.Errorf("%s removed", kept)
		}
	}
}

// TestTraceContextOnlyFromTrustedProxies: issue 19, a client could pick the
// trace its request joins (and force sampling) with its own traceparent.
// The W3C trace context headers are forwarded only from trusted proxies,
// in any spelling.
func TestTraceContextOnlyFromTrustedProxies(t *testing.T) {
	names := []string{"Traceparent", "traceparent", "Tracestate", "Baggage", "baggage", "TRACEPARENT"}
	h := http.Header{}
	for _, n := range names {
		h[n] = []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	}
	if Sanitize(h, false); len(h) != 0 {
		t.Errorf("from an untrusted client: %v survived", h)
	}
	h = http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "Baggage": {"k=v"}}
	if Sanitize(h, true); len(h) != 2 {
		t.Errorf("from a trusted proxy: %v", h)
	}
}
