package authn

import (
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"

	"ztproxy/identity"
)

// DefaultTokenCacheSize is the number of verified tokens kept when
// BearerConfig.CacheSize is zero.
const DefaultTokenCacheSize = 10000

// maxTokenCacheTTL caps how long a verified token is trusted without
// re-checking its signature. Withdrawn keys do not depend on it: an entry
// dies with the key that verified it (trustedKey.stillTrusted).
const maxTokenCacheTTL = 5 * time.Minute

// tokenCacheShards spreads lock contention; a power of two so the shard is a
// mask of the key.
const tokenCacheShards = 32

// tokenKey is the SHA-256 of a raw token. The cache never holds the token
// itself, so a heap dump or a debug print of the cache reveals no
// credential.
type tokenKey [sha256.Size]byte

// hashToken returns the cache key of raw. It hashes the string's bytes in
// place: converting a multi-KiB token to []byte would be the only heap
// allocation of a cache hit, and sha256 neither keeps nor modifies its
// input, so viewing the immutable string as a slice is safe.
func hashToken(raw string) tokenKey {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// cachedToken is one verified token. It is immutable once stored.
type cachedToken struct {
	principal identity.Principal
	// until is when the entry stops being usable: the token's exp, capped
	// by maxTokenCacheTTL from the time it was verified.
	until time.Time
	// key verified the token; the entry is unusable once the key is
	// withdrawn from the IdP's key set or the set is too old to trust.
	key *trustedKey
}

// tokenCache holds verified tokens.
type tokenCache = boundedCache[cachedToken]

// newTokenCache returns a token cache holding about size entries in total.
func newTokenCache(size int) *tokenCache {
	return newBoundedCache(size, func(e *cachedToken) time.Time { return e.until })
}

// boundedCache is a bounded, sharded map of immutable entries keyed by a
// SHA-256. When a shard is full it first drops expired entries and then an
// arbitrary one (Go's map iteration order), which is cheap and good enough
// for caches whose misses cost one signature check or one IdP call.
type boundedCache[E any] struct {
	shards   [tokenCacheShards]cacheShard[E]
	perShard int
	// until is when an entry stops being usable; eviction drops entries
	// past it first.
	until func(*E) time.Time
}

type cacheShard[E any] struct {
	mu      sync.RWMutex
	entries map[tokenKey]*E
}

// newBoundedCache returns a cache holding about size entries in total.
func newBoundedCache[E any](size int, until func(*E) time.Time) *boundedCache[E] {
	perShard := max(size/tokenCacheShards, 1)
	c := &boundedCache[E]{perShard: perShard, until: until}
	for i := range c.shards {
		c.shards[i].entries = make(map[tokenKey]*E)
	}
	return c
}

func (c *boundedCache[E]) shard(key *tokenKey) *cacheShard[E] {
	return &c.shards[key[0]&(tokenCacheShards-1)]
}

// get returns the entry for key, or nil. Callers check until themselves so
// that an expired hit can be reported as expired rather than re-verified.
func (c *boundedCache[E]) get(key *tokenKey) *E {
	s := c.shard(key)
	s.mu.RLock()
	e := s.entries[*key]
	s.mu.RUnlock()
	return e
}

// put stores e under key, evicting to stay within bounds.
func (c *boundedCache[E]) put(key *tokenKey, e *E, now time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[*key]; !ok && len(s.entries) >= c.perShard {
		s.evictLocked(now, c.perShard, c.until)
	}
	s.entries[*key] = e
}

// remove drops key if it still maps to e.
func (c *boundedCache[E]) remove(key *tokenKey, e *E) {
	s := c.shard(key)
	s.mu.Lock()
	if s.entries[*key] == e {
		delete(s.entries, *key)
	}
	s.mu.Unlock()
}

// len returns the number of entries, expired ones included.
func (c *boundedCache[E]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}

// evictLocked makes room for one entry in a shard holding limit entries:
// every expired entry goes, and if none had expired, one arbitrary entry
// goes. The scan is bounded by limit.
func (s *cacheShard[E]) evictLocked(now time.Time, limit int, until func(*E) time.Time) {
	var victim *tokenKey
	for k, e := range s.entries {
		if !now.Before(until(e)) {
			delete(s.entries, k)
		} else if victim == nil {
			victim = &k
		}
	}
	if len(s.entries) >= limit && victim != nil {
		delete(s.entries, *victim)
	}
}
