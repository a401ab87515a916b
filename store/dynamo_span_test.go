package store

import (
	"context"
	"slices"
	"sync"
	"testing"

	"ztproxy/internal/testenv"
)

type spanCtxKey struct{}

// TestDynamoSpans: issue 19, DynamoDB calls had no trace spans. With
// StartSpan set, every call against a real DynamoDB API (dynalite) starts
// a span and ends it with the call's outcome.
func TestDynamoSpans(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	var mu sync.Mutex
	var started, ended []string
	var failed int
	hook := func(ctx context.Context, op string) (context.Context, func(error)) {
		mu.Lock()
		started = append(started, op)
		mu.Unlock()
		return context.WithValue(ctx, spanCtxKey{}, op), func(err error) {
			mu.Lock()
			defer mu.Unlock()
			ended = append(ended, op)
			if err != nil {
				failed++
			}
		}
	}
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: uniquePrefix(), StartSpan: hook})
	createTestTables(t, d)
	ctx := context.Background()
	if err := d.SetFlag(ctx, Flag{UserID: "u1", Level: "watch", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetFlag(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(started, "flags.PutItem") && !slices.Contains(started, "flags.UpdateItem") || !slices.Contains(started, "flags.GetItem") {
		t.Errorf("spans started: %v", started)
	}
	if !slices.Equal(started, ended) || failed != 0 {
		t.Errorf("started %v, ended %v, failed %d", started, ended, failed)
	}
}
