package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"ztproxy/internal/testenv"
)

var prefixSeq atomic.Int64

// uniquePrefix gives every test its own tables on a shared dynalite.
func uniquePrefix() string { return fmt.Sprintf("t%d-", prefixSeq.Add(1)) }

// newTestDynamo connects to dynalite with short retries, so that failures
// surface quickly in tests.
func newTestDynamo(t *testing.T, endpoint string, cfg DynamoConfig) *Dynamo {
	t.Helper()
	cfg.Endpoint = endpoint
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 2
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 50 * time.Millisecond
	}
	if cfg.HTTPTimeout == 0 {
		cfg.HTTPTimeout = 2 * time.Second
	}
	d, err := NewDynamo(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewDynamo: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func createTestTables(t *testing.T, d *Dynamo) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.CreateTables(ctx); err != nil {
		t.Fatalf("CreateTables: %v", err)
	}
}

func TestDynamoContract(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	runContract(t, func(t *testing.T, env contractEnv) Store {
		d := newTestDynamo(t, dl.Endpoint, DynamoConfig{
			TablePrefix: uniquePrefix(), Now: env.Clock.Now, Sealer: env.Sealer, MaxMapEntries: env.MaxMapEntries,
		})
		createTestTables(t, d)
		return d
	})
}

// TestDynamoTwoReplicasMerge runs two stores with separate SDK clients (two
// replicas) against one table: no increment and no network may be lost.
func TestDynamoTwoReplicasMerge(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	prefix := uniquePrefix()
	a := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: prefix})
	b := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: prefix})
	if a.client == b.client {
		t.Fatal("replicas share a client")
	}
	createTestTables(t, a)
	testProfileConcurrent(t, a, b)
}

// TestDynamoRefreshTokenSealed reads the raw item: with a Sealer the refresh
// token is ciphertext; without one it is stored as is (documented).
func TestDynamoRefreshTokenSealed(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	clk := newFakeClock()
	prefix := uniquePrefix()
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: prefix, Now: clk.Now, Sealer: newTestSealer(t)})
	createTestTables(t, d)
	ctx := context.Background()
	rec := sampleSession(clk, "sealed")
	if err := d.PutSession(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateSessionTokens(ctx, "sealed", "rt-rotated-secret", "", rec.TokenExpiry); err != nil {
		t.Fatal(err)
	}
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(prefix + "sessions"), Key: d.sessionKey("sealed")})
	if err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf("%#v", out.Item) + string(getB(out.Item, attrRefreshToken))
	if !getBool(out.Item, attrSealed) || len(getB(out.Item, attrRefreshToken)) == 0 ||
		strings.Contains(raw, "rt-rotated-secret") || strings.Contains(raw, "rt-secret") {
		t.Errorf("raw item holds the refresh token in plaintext or unsealed: %s", raw)
	}
	if ttl := getN(out.Item, attrTTL); ttl != rec.ExpiresAt.Unix() {
		t.Errorf("ttl = %d, want %d (epoch seconds of ExpiresAt)", ttl, rec.ExpiresAt.Unix())
	}
	got, err := d.GetSession(ctx, "sealed")
	if err != nil || got.RefreshToken != "rt-rotated-secret" {
		t.Errorf("GetSession = %q, %v", got.RefreshToken, err)
	}
}

// TestDynamoOutage stops dynalite mid-test: calls must fail with a wrapped
// error within a bounded time, and work again after the restart with the
// data intact.
func TestDynamoOutage(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{Persist: true, InstantTableState: true})
	clk := newFakeClock()
	var calls, failures atomic.Int64
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{
		TablePrefix: uniquePrefix(), Now: clk.Now, MaxAttempts: 3, MaxBackoff: 100 * time.Millisecond, HTTPTimeout: time.Second,
		OnCall: func(op string, _ time.Duration, err error) {
			calls.Add(1)
			if err != nil {
				failures.Add(1)
			}
		},
	})
	createTestTables(t, d)
	ctx := context.Background()
	if err := d.PutSession(ctx, sampleSession(clk, "s1")); err != nil {
		t.Fatal(err)
	}

	dl.Stop()
	start := time.Now()
	_, err := d.GetSession(ctx, "s1")
	elapsed := time.Since(start)
	if err == nil || errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), "store: ") {
		t.Fatalf("GetSession during outage = %v; want a wrapped store error", err)
	}
	if IsThrottle(err) {
		t.Errorf("connection refused classified as throttling: %v", err)
	}
	if elapsed > 3*time.Second {
		t.Errorf("failure took %v; want it bounded by retries (< 3 s)", elapsed)
	}
	if err := d.ApplyObservation(ctx, Observation{UserID: "u", Requests: 1}); err == nil {
		t.Error("ApplyObservation during outage succeeded")
	}
	if failures.Load() == 0 {
		t.Error("OnCall saw no failed call")
	}
	t.Logf("outage: GetSession failed after %v: %v", elapsed, err)

	dl.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := d.GetSession(ctx, "s1")
		if err == nil {
			if got.UserID == "" {
				t.Error("session data lost across the restart")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDynamoCreateTablesIdempotent(t *testing.T) {
	dl := testenv.StartDynalite(t) // default: tables stay CREATING for 500 ms
	var mu sync.Mutex
	ops := map[string]int{}
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: uniquePrefix(), OnCall: func(op string, _ time.Duration, err error) {
		mu.Lock()
		ops[op]++
		mu.Unlock()
	}})
	createTestTables(t, d)
	createTestTables(t, d)
	for _, kind := range []string{"sessions", "profiles", "flags", "credentials"} {
		if ops[kind+".CreateTable"] != 2 {
			t.Errorf("%s.CreateTable called %d times, want 2", kind, ops[kind+".CreateTable"])
		}
	}
	if err := d.PutSession(context.Background(), sampleSession(newFakeClock(), "s")); err != nil {
		t.Errorf("tables not usable after CreateTables: %v", err)
	}
	t.Logf("CreateTables twice: %v", ops)
}
