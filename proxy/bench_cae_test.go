package proxy

import (
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"ztproxy/cae"
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

	h, req := browserBenchServer(b, browserBench{guard: ev})
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
