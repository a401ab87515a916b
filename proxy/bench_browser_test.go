package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"ztproxy/decide"
	"ztproxy/tracing"
)

// BenchmarkBrowserPath measures the browser hot path in-process: open the
// sealed session cookie, check revocation (cached), Cedar policy, the
// assertion, header rewriting and forwarding to a no-op upstream.
func BenchmarkBrowserPath(b *testing.B) { benchmarkBrowserPath(b, browserBench{}) }

// BenchmarkBrowserPathTracing is BenchmarkBrowserPath with tracing on
// (issue 19), sampling 1 % and 100 % of requests, spans exported to a
// discarding exporter in the background.
func BenchmarkBrowserPathTracing(b *testing.B) {
	for _, ratio := range []float64{0.01, 1} {
		b.Run(fmt.Sprintf("sample=%v", ratio), func(b *testing.B) {
			tracer := tracing.NewWithExporter(tracetest.NewNoopExporter(), &ratio)
			defer tracer.Shutdown(context.Background())
			benchmarkBrowserPath(b, browserBench{tracer: tracer})
		})
	}
}

// browserBench is what a browser benchmark adds to the plain proxy.
type browserBench struct {
	tracer *tracing.Tracer
	guard  decide.PrincipalGuard
}

func benchmarkBrowserPath(b *testing.B, o browserBench) {
	h, req := browserBenchServer(b, o)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req.WithContext(context.Background()))
	}
}

// browserBenchServer builds the proxy of the browser benchmarks and a
// request with an eng user's session, checked once.
func browserBenchServer(b *testing.B, o browserBench) (http.Handler, *http.Request) {
	tp := newTestProxy(b)
	browser := newTestBrowser(b, tp)
	cfg := tp.cfg
	cfg.Browser = browser
	if o.guard != nil {
		cfg.Guard = o.guard
	}
	cfg.Authorizer = mustEngine(b, testPolicies+`@id("web-eng") permit (principal, action, resource == Route::"web") when { principal in Group::"eng" };`)
	cfg.Routes = append([]decide.RouteConfig(nil), cfg.Routes...)
	cfg.Routes = append(cfg.Routes, decide.RouteConfig{Name: "web", Host: "web.example.com", PathPrefix: "/", Upstream: cfg.Routes[0].Upstream, Auth: decide.AuthBrowser, PassIdentityHeaders: true})
	s, err := New(cfg, Options{UpstreamTransport: noopTransport{}, Audit: slog.New(slog.NewJSONHandler(io.Discard, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tracer: o.tracer})
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
