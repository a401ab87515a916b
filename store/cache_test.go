package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeChecker answers IsRevoked from a map and counts calls; when gate is
// set, each call waits for it.
type fakeChecker struct {
	calls   atomic.Int64
	mu      sync.Mutex
	revoked map[string]bool
	err     error
	gate    chan struct{}
}

func (f *fakeChecker) IsRevoked(ctx context.Context, id string) (bool, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revoked[id], f.err
}

func (f *fakeChecker) set(id string, revoked bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[id], f.err = revoked, err
}

func TestRevocationCacheTTL(t *testing.T) {
	clk := newFakeClock()
	src := &fakeChecker{revoked: map[string]bool{}}
	c := NewRevocationCache(src, RevocationCacheConfig{TTL: 30 * time.Second, Now: clk.Now})
	ctx := context.Background()
	check := func(step string, wantRevoked bool, wantCalls int64) {
		t.Helper()
		got, err := c.IsRevoked(ctx, "s")
		if err != nil || got != wantRevoked || src.calls.Load() != wantCalls {
			t.Errorf("%s: revoked=%v err=%v calls=%d; want %v, %d calls", step, got, err, src.calls.Load(), wantRevoked, wantCalls)
		}
	}
	check("first", false, 1)
	src.set("s", true, nil) // revoked elsewhere
	clk.Advance(29 * time.Second)
	check("within TTL: cached", false, 1)
	clk.Advance(time.Second)
	check("at TTL: refetched", true, 2)
	clk.Advance(time.Hour)
	check("revocation is sticky", true, 2)

	// Errors are not cached.
	src.set("e", false, errors.New("dynamodb down"))
	if _, err := c.IsRevoked(ctx, "e"); err == nil {
		t.Error("error swallowed")
	}
	src.set("e", false, nil)
	if got, err := c.IsRevoked(ctx, "e"); err != nil || got {
		t.Errorf("after recovery: %v, %v", got, err)
	}
	if src.calls.Load() != 4 {
		t.Errorf("calls = %d, want 4 (errors not cached)", src.calls.Load())
	}

	// The revoking replica sees its own revocation at once.
	c.MarkRevoked("e")
	if got, _ := c.IsRevoked(ctx, "e"); !got {
		t.Error("MarkRevoked not visible")
	}
}

func TestRevocationCacheBounded(t *testing.T) {
	src := &fakeChecker{revoked: map[string]bool{}}
	c := NewRevocationCache(src, RevocationCacheConfig{MaxEntries: 3})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "a", "d"} { // "a" used again, so "b" is the LRU victim
		_, _ = c.IsRevoked(ctx, id)
	}
	if c.Len() != 3 {
		t.Errorf("Len = %d, want 3", c.Len())
	}
	before := src.calls.Load()
	_, _ = c.IsRevoked(ctx, "a")
	_, _ = c.IsRevoked(ctx, "b")
	if got := src.calls.Load() - before; got != 1 {
		t.Errorf("after eviction: %d lookups, want 1 (only b was evicted)", got)
	}
}

func TestRevocationCacheSingleflight(t *testing.T) {
	src := &fakeChecker{revoked: map[string]bool{"s": true}, gate: make(chan struct{})}
	c := NewRevocationCache(src, RevocationCacheConfig{})
	const callers = 64
	var wg sync.WaitGroup
	results := make(chan bool, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.IsRevoked(context.Background(), "s")
			if err != nil {
				t.Error(err)
			}
			results <- got
		}()
	}
	// Waiting callers must not start a lookup of their own; let them pile up.
	deadline := time.Now().Add(2 * time.Second)
	for src.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(src.gate)
	wg.Wait()
	close(results)
	for got := range results {
		if !got {
			t.Fatal("a caller got not-revoked")
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Errorf("%d concurrent callers made %d store calls, want 1", callers, n)
	}
}

func TestRevocationCacheCallerCancel(t *testing.T) {
	src := &fakeChecker{revoked: map[string]bool{}, gate: make(chan struct{})}
	defer close(src.gate)
	c := NewRevocationCache(src, RevocationCacheConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.IsRevoked(ctx, "s"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a cancelled caller waited %v", d)
	}
}
