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

// tokenCache is a bounded, sharded map of verified tokens. When a shard is
// full it first drops expired entries and then an arbitrary one (Go's map
// iteration order), which is cheap and good enough for a cache whose misses
// cost one signature check.
type tokenCache struct {
	shards   [tokenCacheShards]tokenCacheShard
	perShard int
}

type tokenCacheShard struct {
	mu      sync.RWMutex
	entries map[tokenKey]*cachedToken
}

// newTokenCache returns a cache holding about size entries in total.
func newTokenCache(size int) *tokenCache {
	perShard := max(size/tokenCacheShards, 1)
	c := &tokenCache{perShard: perShard}
	for i := range c.shards {
		c.shards[i].entries = make(map[tokenKey]*cachedToken)
	}
	return c
}

func (c *tokenCache) shard(key *tokenKey) *tokenCacheShard {
	return &c.shards[key[0]&(tokenCacheShards-1)]
}

// get returns the entry for key, or nil. Callers check until themselves so
// that an expired hit can be reported as expired rather than re-verified.
func (c *tokenCache) get(key *tokenKey) *cachedToken {
	s := c.shard(key)
	s.mu.RLock()
	e := s.entries[*key]
	s.mu.RUnlock()
	return e
}

// put stores e under key, evicting to stay within bounds.
func (c *tokenCache) put(key *tokenKey, e *cachedToken, now time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[*key]; !ok && len(s.entries) >= c.perShard {
		s.evictLocked(now, c.perShard)
	}
	s.entries[*key] = e
}

// remove drops key if it still maps to e.
func (c *tokenCache) remove(key *tokenKey, e *cachedToken) {
	s := c.shard(key)
	s.mu.Lock()
	if s.entries[*key] == e {
		delete(s.entries, *key)
	}
	s.mu.Unlock()
}

// len returns the number of entries, expired ones included.
func (c *tokenCache) len() int {
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
func (s *tokenCacheShard) evictLocked(now time.Time, limit int) {
	var victim *tokenKey
	for k, e := range s.entries {
		if !now.Before(e.until) {
			delete(s.entries, k)
		} else if victim == nil {
			victim = &k
		}
	}
	if len(s.entries) >= limit && victim != nil {
		delete(s.entries, *victim)
	}
}
