package config

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ztproxy/identity"
	"ztproxy/internal/testenv"
	"ztproxy/store"
)

// TestRiskDynamoCallBudget counts the DynamoDB calls of 10,000 requests of
// one user spread over 60 s, against real dynalite through the real store
// and the adapter: the hot path must not touch the store for a known user
// (issue target: at most 10 calls).
func TestRiskDynamoCallBudget(t *testing.T) {
	ddb := testenv.StartDynalite(t)
	var calls atomic.Int64
	var mu sync.Mutex
	ops := map[string]int{}
	ctx := context.Background()
	var clock atomic.Int64
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	st, err := store.NewDynamo(ctx, store.DynamoConfig{Endpoint: ddb.Endpoint, TablePrefix: "budget_", Now: now,
		OnCall: func(op string, d time.Duration, err error) {
			calls.Add(1)
			mu.Lock()
			ops[op]++
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	clear(ops)
	f := DefaultFile()
	f.Risk.FlushInterval = time.Hour // flushes are driven below, every simulated 10 s
	eng, err := NewRiskEngine(&f, st, RiskHooks{Now: now}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rc := identity.RequestContext{
		Principal: identity.Principal{Kind: identity.KindUser, ID: "https://idp#alice", AuthKind: identity.AuthBrowser},
		ClientIP:  netip.MustParseAddr("198.51.100.7"), UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0", Method: "GET",
	}
	const requests = 10000
	step := 60 * time.Second / requests
	lastFlush := start
	for i := 0; i < requests; i++ {
		clock.Add(int64(step))
		rc.Time = now()
		if _, err := eng.Score(ctx, &rc); err != nil {
			t.Fatal(err)
		}
		if rc.Time.Sub(lastFlush) >= 10*time.Second {
			if err := eng.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			lastFlush = rc.Time
		}
	}
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := st.GetProfile(ctx, "https://idp#alice")
	if err != nil || p.RequestCount != requests {
		t.Fatalf("stored profile: %d requests, %v", p.RequestCount, err)
	}
	got := calls.Load() - 1 // the GetProfile just above
	t.Logf("DynamoDB calls for %d requests over 60 s: %d (%v)", requests, got, ops)
	if got > 10 {
		t.Fatalf("%d DynamoDB calls, want <= 10: %v", got, ops)
	}
}
