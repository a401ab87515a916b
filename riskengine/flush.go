package riskengine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// flushConcurrency bounds parallel ApplyObservation calls in one flush.
const flushConcurrency = 8

// Flush writes the pending observations of every user that has any, one
// ApplyObservation per user; users with nothing to write cost nothing.
// What fails to write stays pending for the next flush.
func (e *Engine) Flush(ctx context.Context) error {
	e.dirtyMu.Lock()
	users := e.dirty
	e.dirty = nil
	e.dirtyMu.Unlock()
	if len(users) == 0 {
		return nil
	}
	var (
		g    errgroup.Group
		mu   sync.Mutex
		errs []error
	)
	g.SetLimit(flushConcurrency)
	for _, u := range users {
		u.mu.Lock()
		u.queued = false // a request from now on queues it again
		u.mu.Unlock()
		g.Go(func() error {
			err := e.flushUser(ctx, u)
			e.afterFlush(u)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("riskengine: flush: %d of %d users failed: %w", len(errs), len(users), errors.Join(errs...))
	}
	return nil
}

// afterFlush queues u again when something is still to be written (a
// failed write, requests that came in meanwhile, or a write another flush
// has in flight), and otherwise forgets u if it was evicted meanwhile.
func (e *Engine) afterFlush(u *userState) {
	u.mu.Lock()
	left := u.pend.dirty || u.unacked != nil || u.flushing > 0
	if left {
		e.markDirty(u)
	}
	u.mu.Unlock()
	if !left {
		e.users.forgetDrained(u)
	}
}

// batch is an aggregate handed to the store, numbered for this writer.
// Until the store confirms it, it is resent as it is, under the same
// number, and the store applies it at most once (issue 14.5: a write that
// timed out here may still land there).
type batch struct {
	agg aggregate
	seq int64
}

// flushUser writes one user's observations: first a batch whose outcome is
// unknown, unchanged, then what is pending as a new batch. One write per
// user is in flight at a time, because a later batch landing first would
// make the store take an earlier one for a duplicate. A batch moves to
// sent when first handed over, so scoring keeps seeing it; requests
// meanwhile collect in a fresh pending aggregate.
func (e *Engine) flushUser(ctx context.Context, u *userState) error {
	for {
		u.mu.Lock()
		if u.flushing > 0 || (u.unacked == nil && !u.pend.dirty) {
			u.mu.Unlock()
			return nil
		}
		resend := u.unacked != nil
		if !resend {
			agg := u.pend
			u.pend = aggregate{}
			u.sent.merge(&agg)
			u.unacked = &batch{agg: agg, seq: e.nextBatch()}
		}
		b := u.unacked
		u.flushStarted++
		u.flushing++
		u.mu.Unlock()

		obs := b.agg.observation(u.id)
		obs.Writer, obs.Batch = e.writer, b.seq
		callCtx, cancel := context.WithTimeout(ctx, e.cfg.StoreTimeout)
		start := time.Now()
		err := e.cfg.Store.ApplyObservation(callCtx, obs)
		cancel()
		e.observeCall("apply_observation", start, err)

		u.mu.Lock()
		u.flushing--
		if err == nil {
			u.unacked = nil
		}
		more := u.pend.dirty
		u.mu.Unlock()
		if err != nil {
			return fmt.Errorf("user %s: %w", u.id, err)
		}
		// After a resend, what arrived during the outage goes out now
		// rather than a flush interval later.
		if !resend || !more {
			return nil
		}
	}
}

// nextBatch numbers a new batch: strictly increasing for this engine and
// at least the wall-clock unix milliseconds, as the store's contract asks.
func (e *Engine) nextBatch() int64 {
	for {
		last := e.lastBatch.Load()
		next := max(last+1, time.Now().UnixMilli())
		if e.lastBatch.CompareAndSwap(last, next) {
			return next
		}
	}
}

// velocity counts a user's requests in the current minute against the
// user's norm: an exponentially weighted average of the requests in past
// active minutes, kept in memory on this replica.
type velocity struct {
	minute int64
	count  int
	norm   float64
}

// hit counts a request at t and reports whether its minute exceeds
// max(factor × norm, floor).
func (v *velocity) hit(t time.Time, factor float64, floor int) bool {
	minute := t.Unix() / 60
	limit := max(factor*v.norm, float64(floor))
	if minute > v.minute {
		if v.count > 0 {
			// A flagged burst is folded in only up to the limit, so an
			// attacker cannot quickly raise the norm.
			c := min(float64(v.count), limit)
			if v.norm == 0 {
				v.norm = c
			} else {
				v.norm = 0.8*v.norm + 0.2*c
			}
			limit = max(factor*v.norm, float64(floor))
		}
		v.minute, v.count = minute, 0
	}
	v.count++
	return float64(v.count) > limit
}

// failedAuthRing keeps the times of the latest failed authentications.
type failedAuthRing struct {
	times [maxFailedAuthThreshold]int64 // unix nanoseconds
	next  int
}

// maxFailedAuthThreshold is the largest FailedAuthThreshold supported.
const maxFailedAuthThreshold = 32

func (r *failedAuthRing) add(t time.Time) {
	r.times[r.next] = t.UnixNano()
	r.next = (r.next + 1) % len(r.times)
}

// count returns how many failures happened within window before t.
func (r *failedAuthRing) count(t time.Time, window time.Duration) int {
	if r == nil {
		return 0
	}
	since := t.Add(-window).UnixNano()
	n := 0
	for _, at := range r.times {
		if at != 0 && at > since {
			n++
		}
	}
	return n
}
