package proxy

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
	sanitizeHeaders(h, false)
	for name := range h {
		if n := normalizeHeaderName(name); strings.HasPrefix(n, "x-ztp") || strings.Contains(n, "forward") || n == "x-real-ip" || strings.Contains(n, "client-cert") || strings.Contains(n, "oidc") {
			t.Errorf("header %q survived sanitizing", name)
		}
	}
	for _, keep := range []string{"Accept", "X-Custom", "Cookie"} {
		if h.Get(keep) == "" {
			t.Errorf("header %q was removed", keep)
		}
	}
	trusted := http.Header{"X-Forwarded-For": {"1.2.3.4"}, "X-Ztp-User": {"x"}}
	sanitizeHeaders(trusted, true)
	if trusted.Get("X-Forwarded-For") == "" {
		t.Error("X-Forwarded-For from a trusted proxy was removed")
	}
	if trusted.Get("X-Ztp-User") != "" {
		t.Error("X-Ztp-User from a trusted proxy survived: the proxy owns it everywhere")
	}
}

func TestRemoveCookie(t *testing.T) {
	h := http.Header{"Cookie": {"a=1; _ztp_session=secret; b=2", "_ztp_session_1=chunk; _ztp_session_x=keep"}}
	removeCookie(h, "_ztp_session")
	got := strings.Join(h["Cookie"], "|")
	if strings.Contains(got, "secret") || strings.Contains(got, "chunk") {
		t.Fatalf("session cookie forwarded: %q", got)
	}
	if got != "a=1; b=2|_ztp_session_x=keep" {
		t.Fatalf("other cookies changed: %q", got)
	}
	h = http.Header{"Cookie": {"_ztp_session=only"}}
	removeCookie(h, "_ztp_session")
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
		sanitizeHeaders(h, trusted)
		n := normalizeHeaderName(name)
		if _, ok := h[name]; ok && (strings.HasPrefix(n, "x-ztp-") || n == "x-ztp") {
			t.Fatalf("owned header %q survived", name)
		}
		if _, ok := h[name]; ok && !trusted && n == "x-forwarded-for" {
			t.Fatalf("forwarding header %q from an untrusted peer survived", name)
		}
	})
}
