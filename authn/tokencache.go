package authn

import (
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"

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

// boundedCache is a bounded, sharded least-recently-used map of immutable
// entries keyed by a SHA-256. Each shard is an O(1) LRU list
// (hashicorp/golang-lru's simplelru): when a shard is full its least
// recently used entry goes, without scanning anything. Expired entries
// are not swept; they age out of the list like any other, and callers
// check until on every hit.
type boundedCache[E any] struct {
	shards [tokenCacheShards]cacheShard[E]
}

type cacheShard[E any] struct {
	mu  sync.Mutex
	lru *simplelru.LRU[tokenKey, *E]
}

// newBoundedCache returns a cache holding about size entries in total.
// until is kept for the callers' sake (they check it on every hit); the
// cache itself evicts by recency only.
func newBoundedCache[E any](size int, _ func(*E) time.Time) *boundedCache[E] {
	perShard := max(size/tokenCacheShards, 1)
	c := &boundedCache[E]{}
	for i := range c.shards {
		c.shards[i].lru, _ = simplelru.NewLRU[tokenKey, *E](perShard, nil) // err only for size <= 0
	}
	return c
}

func (c *boundedCache[E]) shard(key *tokenKey) *cacheShard[E] {
	return &c.shards[key[0]&(tokenCacheShards-1)]
}

// get returns the entry for key, or nil, and marks it recently used.
// Callers check until themselves so that an expired hit can be reported
// as expired rather than re-verified.
func (c *boundedCache[E]) get(key *tokenKey) *E {
	s := c.shard(key)
	s.mu.Lock()
	e, _ := s.lru.Get(*key)
	s.mu.Unlock()
	return e
}

// put stores e under key; a full shard drops its least recently used
// entry.
func (c *boundedCache[E]) put(key *tokenKey, e *E, _ time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	s.lru.Add(*key, e)
	s.mu.Unlock()
}

// remove drops key if it still maps to e.
func (c *boundedCache[E]) remove(key *tokenKey, e *E) {
	s := c.shard(key)
	s.mu.Lock()
	if cur, ok := s.lru.Peek(*key); ok && cur == e {
		s.lru.Remove(*key)
	}
	s.mu.Unlock()
}

// len returns the number of entries, expired ones included.
func (c *boundedCache[E]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
