package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// noopTransport answers every request with a fixed 200 without I/O, so a
// benchmark measures the proxy's own work.
type noopTransport struct{}

func (noopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: http.NoBody, ContentLength: 0,
	}, nil
}

// discardWriter is a ResponseWriter that keeps nothing but the header
// map, reused across iterations.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkBearerPath measures the bearer hot path end to end in-process:
// a cached verified token, Cedar policy, the assertion (cached), header
// rewriting, ReverseProxy and the audit line to a discarding logger.
func BenchmarkBearerPath(b *testing.B) {
	tp := newTestProxy(b)
	s, err := New(tp.cfg, Options{
		UpstreamTransport: noopTransport{},
		Audit:             slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	token := tp.bearer(b, "eng")["Authorization"][0]
	req := httptest.NewRequest("GET", "https://app.example.com/api/items/42?x=1", nil)
	req.RemoteAddr = "203.0.113.7:5555"
	req.Header.Set("Authorization", token)
	req.Header.Set("User-Agent", "bench/1.0")
	req.Header.Set("Accept", "application/json")
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		r := req.WithContext(context.Background())
		h.ServeHTTP(w, r)
	}
}
