package config

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"ztproxy/identity"
	"ztproxy/internal/testenv"
	"ztproxy/store"
)

// Issue 23.1: with more distinct users than risk.max_users, users are
// evicted with observations pending and come back; against the real
// stores every request is still stored exactly once.
func TestRiskEvictedUsersStoredOnceBolt(t *testing.T) {
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	checkEvictedUsersStoredOnce(t, st, nil)
}

// Issue 23.1 with DynamoDB (dynalite): one flush runs while the server is
// paused, so writes time out on the client and land later; the evicted
// users' batches are resent under their tokens and count once.
func TestRiskEvictedUsersStoredOnceDynamo(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	ctx := context.Background()
	st, err := store.NewDynamo(ctx, store.DynamoConfig{Endpoint: dl.Endpoint, TablePrefix: "bound_",
		MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond, HTTPTimeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	checkEvictedUsersStoredOnce(t, st, func(flush func(context.Context) error) {
		dl.Pause(t)
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := flush(fctx); err == nil {
			t.Error("a flush to a paused DynamoDB succeeded")
		}
		cancel()
		dl.Resume(t)
	})
}

// checkEvictedUsersStoredOnce scores 3 rounds of 300 users through an
// engine caching 64, flushing every 50 requests; hang, if set, runs one
// of those flushes against a hung store.
func checkEvictedUsersStoredOnce(t *testing.T, st store.Store, hang func(flush func(context.Context) error)) {
	ctx := context.Background()
	f := DefaultFile()
	f.Risk.FlushInterval = time.Hour // flushes are driven below
	f.Risk.MaxUsers = 64
	eng, err := NewRiskEngine(&f, st, RiskHooks{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	const users, rounds = 300, 3
	n := 0
	for r := range rounds {
		for i := range users {
			rc := identity.RequestContext{
				Principal: identity.Principal{Kind: identity.KindUser, ID: fmt.Sprintf("https://idp#u%d", i), AuthKind: identity.AuthBearer},
				ClientIP:  netip.MustParseAddr("198.51.100.7"), UserAgent: "curl/8.0", Method: "GET", Time: time.Now(),
			}
			if _, err := eng.Score(ctx, &rc); err != nil {
				t.Fatal(err)
			}
			if n++; n%50 == 0 {
				if hang != nil && r == 1 && i == 149 {
					hang(eng.Flush)
					continue
				}
				_ = eng.Flush(ctx) // a failure stays pending
			}
		}
	}
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range users {
		p, err := st.GetProfile(ctx, fmt.Sprintf("https://idp#u%d", i))
		if err != nil || p.RequestCount != rounds {
			t.Fatalf("user u%d: stored %d requests, want %d (%v)", i, p.RequestCount, rounds, err)
		}
	}
}
