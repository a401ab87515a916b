package authn

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"testing"
	"time"

	"ztproxy/identity"
)

// TestVerifyCachedTokenDiesWithItsKey: a cached token is not re-verified
// while its key is published, and is refused as soon as a refresh shows the
// key withdrawn, long before the cache cap.
// Issue 22.1: a withdrawn signing key was accepted indefinitely.
func TestVerifyCachedTokenDiesWithItsKey(t *testing.T) {
	k1, k2 := rsaKey(t, 0, "k1"), rsaKey(t, 1, "k2")
	iss := newTestIssuer(t, k1, k2)
	clock := newTestClock(testEpoch)
	v := newTestVerifier(t, iss, clock, nil)
	ctx := context.Background()
	old := sign(t, k1, baseClaims(iss.URL()))
	for range 2 {
		if _, err := v.Verify(ctx, old); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if n := iss.JWKSFetches(); n != 1 {
		t.Fatalf("JWKS requests after two verifies = %d, want 1", n)
	}

	iss.setKeys(k2) // k1 withdrawn
	clock.advance(DefaultJWKSRefreshInterval)
	// Traffic signed with k2 makes the verifier refresh its keys.
	if _, err := v.Verify(ctx, sign(t, k2, baseClaims(iss.URL()))); err != nil {
		t.Fatalf("Verify with k2: %v", err)
	}
	if n := iss.JWKSFetches(); n != 2 {
		t.Fatalf("JWKS requests after the refresh interval = %d, want 2", n)
	}
	_, err := v.Verify(ctx, old)
	wantBearerError(t, err, CodeInvalidToken, "token is invalid", old)
	fresh := sign(t, k1, withClaims(baseClaims(iss.URL()), "jti", "new"))
	_, err = v.Verify(ctx, fresh)
	wantBearerError(t, err, CodeInvalidToken, "token is invalid", fresh)
}

func TestVerifyCachedTokenExpires(t *testing.T) {
	key := rsaKey(t, 0, "k1")
	iss := newTestIssuer(t, key)
	clock := newTestClock(testEpoch)
	v := newTestVerifier(t, iss, clock, nil)
	raw := sign(t, key, withClaims(baseClaims(iss.URL()), "exp", testEpoch.Add(time.Minute).Unix()))
	ctx := context.Background()
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	clock.advance(time.Minute)
	_, err := v.Verify(ctx, raw)
	wantBearerError(t, err, CodeInvalidToken, "token is expired", raw)
	if n := iss.JWKSFetches(); n != 1 {
		t.Errorf("JWKS requests = %d, want 1", n)
	}
	if n := v.cache.len(); n != 0 {
		t.Errorf("cache holds %d entries after expiry, want 0", n)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	const size = 4 * tokenCacheShards
	c := newTokenCache(size)
	now := testEpoch
	for i := range 10 * size {
		key := tokenKey(sha256.Sum256(fmt.Appendf(nil, "token-%d", i)))
		c.put(&key, &cachedToken{until: now.Add(time.Hour)}, now)
	}
	if n := c.len(); n > size {
		t.Errorf("cache holds %d entries, want at most %d", n, size)
	}
}

// Issue 23: a full shard evicted an arbitrary entry after scanning the
// whole shard (772 MB of allocation churn in the distinct-users soak).
// Now a shard is an LRU: the entry just used survives however many new
// tokens arrive, and the least recently used one goes.
func TestTokenCacheEvictsLeastRecentlyUsed(t *testing.T) {
	const size = 8 * tokenCacheShards
	c := newTokenCache(size)
	now := testEpoch
	hot := tokenKey(sha256.Sum256([]byte("hot")))
	c.put(&hot, &cachedToken{until: now.Add(time.Hour)}, now)
	var first *tokenKey
	for i := range 2000 {
		key := tokenKey(sha256.Sum256(fmt.Appendf(nil, "cold-%d", i)))
		if c.shard(&key) != c.shard(&hot) {
			continue
		}
		if first == nil {
			first = &key
		}
		c.put(&key, &cachedToken{until: now.Add(time.Hour)}, now)
		if c.get(&hot) == nil {
			t.Fatalf("the entry used before every insert was evicted after %d inserts", i)
		}
	}
	if first == nil || c.get(first) != nil {
		t.Error("the least recently used entry was kept")
	}
}

// BenchmarkTokenCachePutFull inserts new tokens into a full default-size
// cache: the cost of an eviction (issue 23: it was a scan of the shard).
func BenchmarkTokenCachePutFull(b *testing.B) {
	c := newTokenCache(DefaultTokenCacheSize)
	now := testEpoch
	keys := make([]tokenKey, 4*DefaultTokenCacheSize)
	for i := range keys {
		keys[i] = tokenKey(sha256.Sum256(fmt.Appendf(nil, "token-%d", i)))
	}
	e := &cachedToken{until: now.Add(time.Hour)}
	for i := range DefaultTokenCacheSize {
		c.put(&keys[i], e, now)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.put(&keys[i%len(keys)], e, now)
		i++
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	key := rsaKey(b, 0, "k1")
	iss := newTestIssuer(b, key)
	v := newTestVerifier(b, iss, newTestClock(testEpoch), nil)
	raw := sign(b, key, withClaims(baseClaims(iss.URL()), "groups", []string{"admins", "devs"}))
	ctx := context.Background()
	if _, err := v.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	key := rsaKey(b, 0, "k1")
	iss := newTestIssuer(b, key)
	v := newTestVerifier(b, iss, newTestClock(testEpoch), nil)
	raw := sign(b, key, baseClaims(iss.URL()))
	ctx := context.Background()
	if _, err := v.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer() // key generation and the first fetch are setup
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTokenCacheMemory reports the heap each cached token costs with
// a typical principal (the figure config.example.yaml gives for
// caches.verified_tokens).
func BenchmarkTokenCacheMemory(b *testing.B) {
	const n = 20_000
	for b.Loop() {
		c := newTokenCache(n)
		now := testEpoch
		before := heapAlloc()
		for i := range n {
			key := tokenKey(sha256.Sum256(fmt.Appendf(nil, "token-%d", i)))
			p := identity.Principal{Kind: identity.KindUser, ID: fmt.Sprintf("https://idp.example.com#user-%d", i),
				Email: fmt.Sprintf("user-%d@example.com", i), Groups: []string{"staff", "engineering"}, IdP: "corp"}
			c.put(&key, &cachedToken{principal: p, until: now.Add(time.Hour)}, now)
		}
		b.ReportMetric(float64(heapAlloc()-before)/n, "B/token")
		runtime.KeepAlive(c)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
