package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"ztproxy/decide"
)

// BenchmarkBrowserPath measures the browser hot path in-process: open the
// sealed session cookie, check revocation (cached), Cedar policy, the
// assertion, header rewriting and forwarding to a no-op upstream.
func BenchmarkBrowserPath(b *testing.B) {
	h, req := browserBenchServer(b, nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req.WithContext(context.Background()))
	}
}

// browserBenchServer builds the proxy of the browser benchmarks (with
// guard, when not nil) and a request with an eng user's session, checked
// once.
func browserBenchServer(b *testing.B, guard decide.PrincipalGuard) (http.Handler, *http.Request) {
	tp := newTestProxy(b)
	browser := newTestBrowser(b, tp)
	cfg := tp.cfg
	cfg.Browser = browser
	if guard != nil {
		cfg.Guard = guard
	}
	cfg.Authorizer = mustEngine(b, testPolicies+`@id("web-eng") permit (principal, action, resource == Route::"web") when { principal in Group::"eng" };`)
	cfg.Routes = append([]decide.RouteConfig(nil), cfg.Routes...)
	cfg.Routes = append(cfg.Routes, decide.RouteConfig{Name: "web", Host: "web.example.com", PathPrefix: "/", Upstream: cfg.Routes[0].Upstream, Auth: decide.AuthBrowser, PassIdentityHeaders: true})
	s, err := New(cfg, Options{UpstreamTransport: noopTransport{}, Audit: slog.New(slog.NewJSONHandler(io.Discard, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	sealed := sealTestSession(b, "eng", "staff", "vpn-users")
	req := httptest.NewRequest("GET", "https://web.example.com/dashboard?tab=1", nil)
	req.RemoteAddr = "203.0.113.7:5555"
	for _, c := range sealed {
		req.AddCookie(c)
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0")
	req.Header.Set("Accept", "text/html")
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
	}
	return h, req
}
