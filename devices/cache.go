package devices

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// cacheEntry is one device as last read from the store. Entries are
// replaced, never changed, apart from the posture memo.
type cacheEntry struct {
	id      string
	rec     *Record // nil: the store has no such device
	expires time.Time
	// posture memoises rec.resolve until a fact ages out.
	posture atomic.Pointer[resolvedPosture]
}

// resolved returns the record's posture at now, computing it only when a
// fact aged out since the last call.
func (e *cacheEntry) resolved(now time.Time, maxAge time.Duration) resolvedPosture {
	if p := e.posture.Load(); p != nil && (p.until.IsZero() || now.Before(p.until)) {
		return *p
	}
	p := e.rec.resolve(now, maxAge)
	e.posture.Store(&p)
	return p
}

// recordCache answers per-request lookups from memory: an entry is used
// for ttl, then the next lookup reads the store once for everyone waiting
// (singleflight). Least recently used entries are evicted beyond size.
type recordCache struct {
	store   Store
	ttl     time.Duration
	size    int
	timeout time.Duration
	now     func() time.Time
	group   singleflight.Group

	mu      sync.Mutex
	entries map[string]*list.Element // values are *cacheEntry
	lru     *list.List
}

func newRecordCache(cfg *Config) *recordCache {
	return &recordCache{
		store: cfg.Store, ttl: cfg.CacheTTL, size: cfg.CacheSize, timeout: cfg.FetchTimeout, now: cfg.Now,
		entries: map[string]*list.Element{}, lru: list.New(),
	}
}

// lookup returns the cached entry, and whether it is still fresh.
func (c *recordCache) lookup(id string, now time.Time) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[id]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	return e, now.Before(e.expires)
}

// get returns the device's entry, reading the store when the cached one
// is missing or older than ttl. When the read fails, a cached revoked or
// lost device stays refused; anything else is an error (the caller then
// treats the device as unknown).
func (c *recordCache) get(ctx context.Context, id string) (*cacheEntry, bool, error) {
	now := c.now()
	old, fresh := c.lookup(id, now)
	if fresh {
		return old, true, nil
	}
	ch := c.group.DoChan(id, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		rec, err := c.store.GetDevice(fctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return c.put(id, nil), nil
		case err != nil:
			return nil, err
		}
		return c.put(id, &rec), nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			if old != nil && old.rec != nil && old.rec.Status != "" && old.rec.Status != statusActive {
				return old, false, nil
			}
			return nil, false, fmt.Errorf("devices: reading device %s: %w", id, res.Err)
		}
		return res.Val.(*cacheEntry), false, nil
	case <-ctx.Done():
		return nil, false, fmt.Errorf("devices: reading device %s: %w", id, ctx.Err())
	}
}

// put caches rec (nil: no such device) for ttl and returns the entry in
// effect: a newer version this replica wrote meanwhile wins over an older
// read.
func (c *recordCache) put(id string, rec *Record) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{id: id, rec: rec, expires: c.now().Add(c.ttl)}
	if el, ok := c.entries[id]; ok {
		cur := el.Value.(*cacheEntry)
		if cur.rec != nil && rec != nil && cur.rec.Version > rec.Version {
			cur2 := &cacheEntry{id: id, rec: cur.rec, expires: e.expires}
			el.Value = cur2
			c.lru.MoveToFront(el)
			return cur2
		}
		el.Value = e
		c.lru.MoveToFront(el)
		return e
	}
	c.entries[id] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).id)
	}
	return e
}

// statusActive is identity.DeviceActive, repeated to keep cache.go free
// of the identity import.
const statusActive = "active"

// forget drops the cached entry of id, so that the next lookup reads the
// store.
func (c *recordCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[id]; ok {
		c.lru.Remove(el)
		delete(c.entries, id)
	}
}
