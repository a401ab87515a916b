package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"ztproxy/cae"
	"ztproxy/decide"
	"ztproxy/store"
)

// countingSource counts the store reads continuous access evaluation
// makes (issue 17).
type countingSource struct {
	*store.Bolt
	reads atomic.Int64
}

func (c *countingSource) ChangesSince(ctx context.Context, since time.Time) ([]store.Change, error) {
	c.reads.Add(1)
	return c.Bolt.ChangesSince(ctx, since)
}

func (c *countingSource) ListFlags(ctx context.Context) ([]store.Flag, error) {
	c.reads.Add(1)
	return c.Bolt.ListFlags(ctx)
}

func (c *countingSource) GetFlag(ctx context.Context, id string) (store.Flag, error) {
	c.reads.Add(1)
	return c.Bolt.GetFlag(ctx, id)
}

// BenchmarkBrowserPathCAE is BenchmarkBrowserPath with continuous access
// evaluation on (issue 17): the kill switch and step-up checks answer
// from memory, so a user with no events costs no store read per request;
// the only reads are the feed polls (one per PollInterval, whatever the
// traffic). It reports store-reads/op, which must stay ~0.
func BenchmarkBrowserPathCAE(b *testing.B) {
	bolt, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(b.TempDir(), "s.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bolt.Close() })
	src := &countingSource{Bolt: bolt}
	// Someone else is flagged; the benchmark's user has no events.
	_ = bolt.SetFlag(context.Background(), store.Flag{UserID: "https://idp.example#mallory", Level: store.FlagCompromised, Reason: "x"})
	ev, err := cae.New(cae.Config{Store: src})
	if err != nil {
		b.Fatal(err)
	}
	if err := ev.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ev.Close)

	tp := newTestProxy(b)
	cfg := tp.cfg
	cfg.Browser = newTestBrowser(b, tp)
	cfg.Guard = ev
	cfg.Authorizer = mustEngine(b, testPolicies+`@id("web-eng") permit (principal, action, resource == Route::"web") when { principal in Group::"eng" };`)
	cfg.Routes = append(append([]decide.RouteConfig(nil), cfg.Routes...), decide.RouteConfig{Name: "web", Host: "web.example.com",
		PathPrefix: "/", Upstream: cfg.Routes[0].Upstream, Auth: decide.AuthBrowser, PassIdentityHeaders: true})
	s, err := New(cfg, Options{UpstreamTransport: noopTransport{}, Audit: slog.New(slog.NewJSONHandler(io.Discard, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "https://web.example.com/dashboard?tab=1", nil)
	req.RemoteAddr = "203.0.113.7:5555"
	for _, c := range sealTestSession(b, "eng", "staff", "vpn-users") {
		req.AddCookie(c)
	}
	req.Header.Set("Accept", "text/html")
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
	}
	w := &discardWriter{h: http.Header{}}
	before := src.reads.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req.WithContext(context.Background()))
	}
	b.StopTimer()
	b.ReportMetric(float64(src.reads.Load()-before)/float64(b.N), "store-reads/op")
}
