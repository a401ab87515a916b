package store

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// RevocationChecker is the one method RevocationCache needs; SessionStore
// implements it.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, sessionID string) (bool, error)
}

// RevocationCacheConfig configures a RevocationCache.
type RevocationCacheConfig struct {
	// TTL is how long a "not revoked" answer is trusted; it bounds how late
	// a replica notices a revocation made elsewhere. Default 30 s.
	TTL time.Duration
	// MaxEntries bounds memory; the least recently used entry is evicted.
	// Default 100,000.
	MaxEntries int
	// FetchTimeout bounds one shared store lookup (default 5 s). The lookup
	// is not cancelled by the caller that started it, because other callers
	// may be waiting on it.
	FetchTimeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// RevocationCache answers IsRevoked from memory for the hot path. A "not
// revoked" answer is kept for TTL; a "revoked" answer is kept until evicted,
// since a revocation is never undone. Concurrent misses for one session share
// a single store lookup. Errors are not cached.
type RevocationCache struct {
	src   RevocationChecker
	cfg   RevocationCacheConfig
	group singleflight.Group

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     *list.List // front = most recently used; values are *revocationEntry
}

type revocationEntry struct {
	id      string
	revoked bool
	expires time.Time
}

var _ RevocationChecker = (*RevocationCache)(nil)

// NewRevocationCache wraps src.
func NewRevocationCache(src RevocationChecker, cfg RevocationCacheConfig) *RevocationCache {
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RevocationCache{src: src, cfg: cfg, entries: map[string]*list.Element{}, lru: list.New()}
}

// IsRevoked answers from the cache, or asks the store once for all
// concurrent callers.
func (c *RevocationCache) IsRevoked(ctx context.Context, sessionID string) (bool, error) {
	if revoked, ok := c.lookup(sessionID); ok {
		return revoked, nil
	}
	ch := c.group.DoChan(sessionID, func() (any, error) {
		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FetchTimeout)
		defer cancel()
		revoked, err := c.src.IsRevoked(fetchCtx, sessionID)
		if err != nil {
			return false, err
		}
		return c.remember(sessionID, revoked), nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return false, fmt.Errorf("store: revocation check: %w", res.Err)
		}
		return res.Val.(bool), nil
	case <-ctx.Done():
		return false, fmt.Errorf("store: revocation check: %w", ctx.Err())
	}
}

// MarkRevoked records a revocation made by this replica, so that it takes
// effect here at once rather than after TTL.
func (c *RevocationCache) MarkRevoked(sessionID string) { c.remember(sessionID, true) }

// Len returns the number of cached entries.
func (c *RevocationCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *RevocationCache) lookup(id string) (revoked, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, found := c.entries[id]
	if !found {
		return false, false
	}
	e := el.Value.(*revocationEntry)
	if !e.revoked && !c.cfg.Now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, id)
		return false, false
	}
	c.lru.MoveToFront(el)
	return e.revoked, true
}

// remember stores an answer and returns the answer to use: a revocation
// already cached wins over a stale "not revoked" from a lookup that raced it.
func (c *RevocationCache) remember(id string, revoked bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	expires := c.cfg.Now().Add(c.cfg.TTL)
	if el, found := c.entries[id]; found {
		e := el.Value.(*revocationEntry)
		e.revoked = e.revoked || revoked
		e.expires = expires
		c.lru.MoveToFront(el)
		return e.revoked
	}
	c.entries[id] = c.lru.PushFront(&revocationEntry{id: id, revoked: revoked, expires: expires})
	for c.lru.Len() > c.cfg.MaxEntries {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*revocationEntry).id)
	}
	return revoked
}
