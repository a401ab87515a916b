package riskengine

import (
	"hash/maphash"
	"sync"
	"time"
)

// userShards spreads the table's lock; a power of two.
const userShards = 16

// victimTries is how many users from the cold end of a shard an insert
// looks at for one it can evict without waiting for a lock.
const victimTries = 4

// userTable holds the cached users, bounded by count. Each shard keeps its
// users on an intrusive list in order of last use, so finding the least
// recently used user is O(1) and nothing ever scans the table.
//
// A user with nothing to write is simply forgotten when evicted. A user
// with pending or unacknowledged observations is taken off the list
// ("draining") but stays in the map, compacted to what must still be
// written, until a flush has written it; a request for it meanwhile puts
// it back on the list, so one user never has two states writing at once.
//
// Lock order: shard.mu, then userState.mu, then Engine.dirtyMu.
type userTable struct {
	shards   [userShards]userShard
	perShard int
	seed     maphash.Seed
}

type userShard struct {
	mu     sync.Mutex
	m      map[string]*userState
	head   userState // sentinel of the list: head.next is the most recent
	listed int
}

// lruLinks are a user's place in its shard's list, guarded by the shard's
// mutex (not the user's).
type lruLinks struct {
	prev, next *userState
	listed     bool
	touched    int64 // unix nanoseconds of the last get
}

func newUserTable(maxUsers int) *userTable {
	t := &userTable{perShard: max(maxUsers/userShards, 1), seed: maphash.MakeSeed()}
	for i := range t.shards {
		s := &t.shards[i]
		s.m = make(map[string]*userState)
		s.head.lru.prev, s.head.lru.next = &s.head, &s.head
	}
	return t
}

func (t *userTable) shard(id string) *userShard {
	return &t.shards[maphash.String(t.seed, id)&(userShards-1)]
}

// get returns the state of id, creating it if needed, and marks it most
// recently used. Creating one may evict the least recently used user of
// the shard; it never waits for the store.
func (t *userTable) get(id string, now time.Time) *userState {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.m[id]
	if !ok {
		u = &userState{id: id, lastAccess: now}
		s.m[id] = u
	}
	if u.lru.listed {
		s.unlink(u)
	}
	s.pushFront(u)
	u.lru.touched = now.UnixNano()
	v := s.head.lru.prev
	for tries := 0; s.listed > t.perShard && tries < victimTries && v != &s.head; tries++ {
		prev := v.lru.prev
		s.evictOne(v, u) // a user locked by a request is passed over
		v = prev
	}
	return u
}

// peek returns the state of id without creating it or marking it used.
func (t *userTable) peek(id string) *userState {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

// evictIdle evicts users whose last use is before cutoff, walking each
// shard from its cold end: the cost is the number evicted, not the number
// cached.
func (t *userTable) evictIdle(cutoff time.Time) {
	c := cutoff.UnixNano()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		skipped := 0
		for v := s.head.lru.prev; v != &s.head && v.lru.touched < c && skipped < victimTries; {
			prev := v.lru.prev
			if !s.evictOne(v, nil) {
				skipped++
			}
			v = prev
		}
		s.mu.Unlock()
	}
}

// forgetDrained drops u from the table if it was evicted while it had
// something to write and a flush has now written everything.
func (t *userTable) forgetDrained(u *userState) {
	s := t.shard(u.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.lru.listed || s.m[u.id] != u {
		return
	}
	u.mu.Lock()
	if u.clean() {
		u.evicted = true
		delete(s.m, u.id)
	}
	u.mu.Unlock()
}

// len returns the number of users on the lists and the number draining.
func (t *userTable) len() (listed, draining int) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		listed += s.listed
		draining += len(s.m) - s.listed
		s.mu.Unlock()
	}
	return listed, draining
}

// evictOne evicts v unless it is keep, the sentinel, or locked by a
// request; it reports whether v left the list. s.mu is held.
func (s *userShard) evictOne(v, keep *userState) bool {
	if v == &s.head || v == keep || !v.mu.TryLock() {
		return false
	}
	defer v.mu.Unlock()
	s.unlink(v)
	if v.clean() {
		v.evicted = true
		delete(s.m, v.id)
		return true
	}
	v.compact() // draining: a flush writes it, then forgetDrained drops it
	return true
}

func (s *userShard) pushFront(u *userState) {
	u.lru.prev, u.lru.next = &s.head, s.head.lru.next
	s.head.lru.next.lru.prev = u
	s.head.lru.next = u
	u.lru.listed = true
	s.listed++
}

func (s *userShard) unlink(u *userState) {
	u.lru.prev.lru.next = u.lru.next
	u.lru.next.lru.prev = u.lru.prev
	u.lru.prev, u.lru.next, u.lru.listed = nil, nil, false
	s.listed--
}

// clean reports whether u has nothing to write. u.mu is held.
func (u *userState) clean() bool {
	return !u.pend.dirty && u.unacked == nil && u.flushing == 0
}

// compact drops what a draining user holds only for scoring: the cached
// profile and flag, velocity and failed-auth history. What must still be
// written (pend, unacked, sent) stays. A request that revives the user
// reads the profile again. u.mu is held.
func (u *userState) compact() {
	u.prof, u.profForce = nil, false
	u.flag, u.flagLoaded, u.flagForce = flagView{}, false, false
	u.velocity = velocity{}
	u.failedAuth = nil
}
