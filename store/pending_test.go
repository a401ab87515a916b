package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// resultCounts counts OnResult calls.
type resultCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *resultCounts) add(result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[result]++
}

func (r *resultCounts) get(result string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[result]
}

// runPending runs p's retry loop; stop (also run at cleanup) ends it and
// closes p, as a proxy shutting down does.
func runPending(t *testing.T, p *PendingRevocations) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done; p.Close() }) }
	t.Cleanup(stop)
	return stop
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPendingRevocationsAcrossOutage: issue 22.6, a sign-out while the
// store was down changed nothing anywhere. The revocation is kept (in the
// journal too), reported by Has, retried with backoff while dynalite is
// down, written once it is back, and survives a restart of the proxy in
// between.
func TestPendingRevocationsAcrossOutage(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{Persist: true, InstantTableState: true})
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: uniquePrefix(), HTTPTimeout: 500 * time.Millisecond})
	createTestTables(t, d)
	clk := &fakeClock{now: time.Now()}
	ctx := context.Background()
	if err := d.PutSession(ctx, sampleSession(clk, "s1")); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(t.TempDir(), "revocations.db")
	var results resultCounts
	var pendingGauge int
	var gaugeMu sync.Mutex
	cfg := PendingRevocationsConfig{
		Store: d, JournalPath: journal, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		AttemptTimeout: time.Second, OnResult: results.add,
		OnPending: func(n int) { gaugeMu.Lock(); pendingGauge = n; gaugeMu.Unlock() },
	}

	dl.Stop()
	if err := d.RevokeSession(ctx, "s1", time.Now()); err == nil {
		t.Fatal("revocation succeeded while dynalite is stopped")
	}
	first, err := OpenPendingRevocations(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Add("s1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if !first.Has("s1") || first.Has("s2") || first.Len() != 1 {
		t.Fatalf("Has/Len after Add: %v %v %d", first.Has("s1"), first.Has("s2"), first.Len())
	}
	if _, err := OpenPendingRevocations(cfg); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second open of the journal: %v", err)
	}
	stopFirst := runPending(t, first)
	waitUntil(t, "retries to fail while dynalite is down", func() bool { return results.get("error") >= 2 })
	// The proxy restarts during the outage: the journal keeps the intent.
	stopFirst()
	second, err := OpenPendingRevocations(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Has("s1") {
		t.Fatal("the pending revocation was lost across a restart")
	}
	runPending(t, second)

	dl.Restart(t)
	waitUntil(t, "the revocation to be written", func() bool { return second.Len() == 0 })
	if revoked, err := d.IsRevoked(ctx, "s1"); err != nil || !revoked {
		t.Fatalf("store after the retry: revoked %v, %v", revoked, err)
	}
	gaugeMu.Lock()
	defer gaugeMu.Unlock()
	if pendingGauge != 0 || results.get("written") != 1 {
		t.Fatalf("gauge %d, results %v", pendingGauge, results.n)
	}
}

// TestPendingRevocationsAbandonAfterMaxAge: retries are bounded by the
// session lifetime; after it the session has expired anyway.
func TestPendingRevocationsAbandonAfterMaxAge(t *testing.T) {
	b, err := OpenBolt(BoltConfig{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	b.Close() // a store that fails every call
	clk := newFakeClock()
	var results resultCounts
	p, err := OpenPendingRevocations(PendingRevocationsConfig{
		Store: b, MaxAge: time.Hour, MinBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, Now: clk.Now, OnResult: results.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Add("s1", clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	p.retryDue(context.Background())
	if results.get("error") != 1 || !p.Has("s1") {
		t.Fatalf("first retry: %v, pending %v", results.n, p.Has("s1"))
	}
	clk.Advance(2 * time.Hour)
	p.retryDue(context.Background())
	if results.get("abandoned") != 1 || p.Has("s1") || p.Len() != 0 {
		t.Fatalf("after MaxAge: %v, pending %v", results.n, p.Has("s1"))
	}
}

func TestPendingRevocationsBounded(t *testing.T) {
	b, err := OpenBolt(BoltConfig{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := OpenPendingRevocations(PendingRevocationsConfig{Store: b, MaxPending: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "a"} {
		if err := p.Add(id, time.Now()); err != nil {
			t.Fatalf("Add(%s): %v", id, err)
		}
	}
	if err := p.Add("c", time.Now()); !errors.Is(err, ErrTooManyPending) || p.Has("c") {
		t.Fatalf("Add beyond MaxPending: %v", err)
	}
	if _, err := OpenPendingRevocations(PendingRevocationsConfig{}); err == nil {
		t.Fatal("no store accepted")
	}
}

func TestPendingBackoff(t *testing.T) {
	p := &PendingRevocations{cfg: PendingRevocationsConfig{MinBackoff: time.Second, MaxBackoff: 30 * time.Second}}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 6: 30 * time.Second, 100: 30 * time.Second} {
		got := p.backoff(n)
		if got > want || got < want*4/5 {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, got, want*4/5, want)
		}
	}
}
