package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Revoker is the one method PendingRevocations retries; SessionStore
// implements it.
type Revoker interface {
	RevokeSession(ctx context.Context, id string, at time.Time) error
}

// PendingRevocationsConfig configures PendingRevocations.
type PendingRevocationsConfig struct {
	// Store receives the retried writes.
	Store Revoker
	// JournalPath is a local bbolt file that keeps pending revocations
	// across restarts. One process at a time may hold it. Empty keeps them
	// in memory only (enough when Store is itself a local file).
	JournalPath string
	// MaxAge bounds the retries of one revocation: once it is this old the
	// session it ends has expired anyway (set it to the session lifetime),
	// and it is dropped as "abandoned". Default 24 h.
	MaxAge time.Duration
	// MinBackoff (default 1 s) is the delay before the first retry; it
	// doubles, with jitter, up to MaxBackoff (default 30 s).
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one store write (default 5 s).
	AttemptTimeout time.Duration
	// MaxPending bounds memory and the journal (default 100,000); Add
	// refuses more.
	MaxPending int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnPending, when set, is called with the number of pending
	// revocations after every change.
	OnPending func(n int)
	// OnResult, when set, is called after every retry with "written"
	// (the store has it, or the session is gone), "error" (retried later)
	// or "abandoned" (dropped after MaxAge).
	OnResult func(result string)
}

// PendingRevocations holds session revocations that this replica has
// enforced but that the shared store has not recorded yet, and retries the
// store write in the background with backoff. Until a revocation is
// written, Has reports it, so the session stays refused on this replica
// whatever the revocation cache evicts or the store still says.
type PendingRevocations struct {
	cfg     PendingRevocationsConfig
	journal *bolt.DB // nil without JournalPath
	wake    chan struct{}
	count   atomic.Int64

	mu      sync.Mutex
	pending map[string]*pendingRevocation
}

type pendingRevocation struct {
	at       time.Time // when the session was revoked
	attempts int
	next     time.Time // when to try again
}

// journalEntry is a pending revocation as kept in the journal, keyed by
// session id.
type journalEntry struct {
	At time.Time `json:"at"`
}

var bucketPending = []byte("pending_revocations")

// ErrTooManyPending is returned by Add when MaxPending revocations already
// wait for the store.
var ErrTooManyPending = errors.New("store: too many revocations pending")

// OpenPendingRevocations opens the journal, if any, and loads the
// revocations a previous run left pending; they are retried at once.
func OpenPendingRevocations(cfg PendingRevocationsConfig) (*PendingRevocations, error) {
	if cfg.Store == nil {
		return nil, invalid("pending revocations need a store")
	}
	setPendingDefaults(&cfg)
	p := &PendingRevocations{cfg: cfg, wake: make(chan struct{}, 1), pending: map[string]*pendingRevocation{}}
	if cfg.JournalPath == "" {
		return p, nil
	}
	db, err := bolt.Open(cfg.JournalPath, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: revocation journal %s is in use by another process (give each replica its own)", cfg.JournalPath)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening revocation journal: %w", err)
	}
	now := cfg.Now()
	err = db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketPending)
		if err != nil {
			return err
		}
		return bk.ForEach(func(k, v []byte) error {
			var e journalEntry
			if json.Unmarshal(v, &e) != nil || e.At.IsZero() {
				return nil // unreadable: nothing to retry
			}
			p.pending[string(k)] = &pendingRevocation{at: e.At, next: now}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: reading revocation journal: %w", err)
	}
	p.journal = db
	p.changed()
	return p, nil
}

func setPendingDefaults(cfg *PendingRevocationsConfig) {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 5 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

// Add records a revocation the store could not take. The session is
// pending (Has reports it) even when the journal write fails; the error
// then says the intent would not survive a restart.
func (p *PendingRevocations) Add(id string, at time.Time) error {
	p.mu.Lock()
	if _, ok := p.pending[id]; ok {
		p.mu.Unlock()
		return nil
	}
	if len(p.pending) >= p.cfg.MaxPending {
		p.mu.Unlock()
		return ErrTooManyPending
	}
	p.pending[id] = &pendingRevocation{at: at, next: p.cfg.Now().Add(p.cfg.MinBackoff)}
	p.mu.Unlock()
	p.changed()
	p.poke()
	if p.journal == nil {
		return nil
	}
	value, err := json.Marshal(journalEntry{At: at})
	if err == nil {
		err = p.journal.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPending).Put([]byte(id), value) })
	}
	if err != nil {
		return fmt.Errorf("store: writing revocation journal: %w", err)
	}
	return nil
}

// Has reports whether id is revoked here and waiting for the store.
func (p *PendingRevocations) Has(id string) bool {
	if p.count.Load() == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.pending[id]
	return ok
}

// Len is the number of pending revocations.
func (p *PendingRevocations) Len() int { return int(p.count.Load()) }

// StoreReachable tells the retry loop that a store call just succeeded:
// pending revocations are retried now rather than after their backoff.
func (p *PendingRevocations) StoreReachable() {
	if p.count.Load() == 0 {
		return
	}
	now := p.cfg.Now()
	p.mu.Lock()
	for _, r := range p.pending {
		r.next = now
	}
	p.mu.Unlock()
	p.poke()
}

// Run retries pending revocations until ctx ends.
func (p *PendingRevocations) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
		}
		wait := p.retryDue(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// Close closes the journal; what is still pending stays in it for the
// next run.
func (p *PendingRevocations) Close() error {
	if p.journal == nil {
		return nil
	}
	return p.journal.Close()
}

func (p *PendingRevocations) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *PendingRevocations) changed() {
	p.mu.Lock()
	n := len(p.pending)
	p.mu.Unlock()
	p.count.Store(int64(n))
	if p.cfg.OnPending != nil {
		p.cfg.OnPending(n)
	}
}

// retryDue tries every revocation that is due, one at a time, and returns
// how long to wait until the next one is.
func (p *PendingRevocations) retryDue(ctx context.Context) time.Duration {
	now := p.cfg.Now()
	type due struct {
		id string
		at time.Time
	}
	var batch []due
	p.mu.Lock()
	for id, r := range p.pending {
		if !now.Before(r.next) {
			batch = append(batch, due{id, r.at})
		}
	}
	p.mu.Unlock()
	for _, d := range batch {
		if ctx.Err() != nil {
			break
		}
		p.attempt(ctx, d.id, d.at)
	}
	return p.untilNext()
}

// attempt writes one revocation to the store and settles its fate.
func (p *PendingRevocations) attempt(ctx context.Context, id string, at time.Time) {
	actx, cancel := context.WithTimeout(ctx, p.cfg.AttemptTimeout)
	err := p.cfg.Store.RevokeSession(actx, id, at)
	cancel()
	now := p.cfg.Now()
	result := "error"
	switch {
	case err == nil, errors.Is(err, ErrNotFound):
		// ErrNotFound: the session is gone or expired, which refuses it
		// as surely.
		result = "written"
	case now.Sub(at) > p.cfg.MaxAge:
		result = "abandoned"
	}
	if result == "error" {
		p.mu.Lock()
		if r, ok := p.pending[id]; ok {
			r.attempts++
			r.next = now.Add(p.backoff(r.attempts))
		}
		p.mu.Unlock()
	} else {
		p.remove(id)
	}
	if p.cfg.OnResult != nil {
		p.cfg.OnResult(result)
	}
}

// backoff is the delay after the n-th failed retry: MinBackoff doubling up
// to MaxBackoff, less up to a fifth at random so replicas spread out.
func (p *PendingRevocations) backoff(n int) time.Duration {
	d := p.cfg.MaxBackoff
	if n < 32 {
		d = min(p.cfg.MinBackoff<<(n-1), p.cfg.MaxBackoff)
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func (p *PendingRevocations) remove(id string) {
	p.mu.Lock()
	delete(p.pending, id)
	p.mu.Unlock()
	if p.journal != nil {
		// A failed delete only means one more (harmless) retry after a
		// restart.
		_ = p.journal.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPending).Delete([]byte(id)) })
	}
	p.changed()
}

// untilNext is the wait until the earliest pending retry (an hour when
// nothing is pending; Add and StoreReachable wake the loop early).
func (p *PendingRevocations) untilNext() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	wait := time.Hour
	now := p.cfg.Now()
	for _, r := range p.pending {
		wait = min(wait, r.next.Sub(now))
	}
	return max(wait, 0)
}
