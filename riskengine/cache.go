package riskengine

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/singleflight"
)

// refreshRetry is how soon a failed background refresh is tried again;
// stale data keeps being served meanwhile.
const refreshRetry = 5 * time.Second

// ready returns the user's state, locked, with a profile and flag cached
// if at all possible. hit is false when the call had to wait for the store;
// err is the store error when the wait did not produce what was needed.
func (e *Engine) ready(ctx context.Context, id string, now time.Time) (u *userState, hit bool, err error) {
	for {
		u = e.user(id, now)
		u.mu.Lock()
		if u.evicted {
			u.mu.Unlock()
			continue
		}
		needProfile := u.prof == nil || u.profForce
		needFlag := !u.flagLoaded || u.flagForce
		if !needProfile && !needFlag {
			e.refreshStale(u, now)
			return u, true, nil
		}
		u.mu.Unlock()
		err = e.loadCold(ctx, u, needProfile, needFlag)
		u.mu.Lock()
		if u.evicted {
			u.mu.Unlock()
			continue
		}
		if err == nil && (u.prof == nil || !u.flagLoaded) {
			err = errors.New("riskengine: profile or flag not loaded") // raced with Invalidate
		}
		return u, false, err
	}
}

// loadCold reads what a user is missing and waits for it. Concurrent
// callers for the same user share one read per kind.
func (e *Engine) loadCold(ctx context.Context, u *userState, needProfile, needFlag bool) error {
	var waits []<-chan singleflight.Result
	if needProfile {
		waits = append(waits, e.profiles.DoChan(u.id, func() (any, error) { return nil, e.loadProfile(u, true) }))
	}
	if needFlag {
		waits = append(waits, e.flags.DoChan(u.id, func() (any, error) { return nil, e.loadFlag(u, true) }))
	}
	var errs []error
	for _, ch := range waits {
		select {
		case res := <-ch:
			if res.Err != nil {
				errs = append(errs, res.Err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// refreshStale starts background refreshes of an expired profile or flag.
// u.mu is held.
func (e *Engine) refreshStale(u *userState, now time.Time) {
	if !u.profRefreshing && now.Sub(u.profAt) >= e.cfg.ProfileTTL {
		u.profRefreshing = true
		go func() { _, _, _ = e.profiles.Do(u.id, func() (any, error) { return nil, e.loadProfile(u, false) }) }()
	}
	if !u.flagRefreshing && now.Sub(u.flagAt) >= e.cfg.FlagTTL {
		u.flagRefreshing = true
		go func() { _, _, _ = e.flags.Do(u.id, func() (any, error) { return nil, e.loadFlag(u, false) }) }()
	}
}

// loadProfile reads the profile and installs it. When no flush was in
// flight as the read began and none began since, everything sent is in the
// stored profile and sent can be emptied. A cold load (ifMissing) skips
// the read when a load that finished just before it already installed one.
func (e *Engine) loadProfile(u *userState, ifMissing bool) error {
	u.mu.Lock()
	gen, started, quiet := u.profGen, u.flushStarted, u.flushing == 0 && u.unacked == nil
	done := ifMissing && u.prof != nil && !u.profForce
	u.mu.Unlock()
	if done {
		return nil
	}

	ctx, cancel := context.WithTimeout(e.bgCtx, e.cfg.StoreTimeout)
	defer cancel()
	start := time.Now()
	p, err := e.cfg.Store.GetProfile(ctx, u.id)
	if errors.Is(err, ErrNotFound) {
		p, err = Profile{}, nil
	}
	e.observeCall("get_profile", start, err)

	now := e.cfg.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.profRefreshing = false
	if err != nil {
		if u.prof != nil {
			u.profAt = now.Add(refreshRetry - e.cfg.ProfileTTL)
			e.cfg.Logger.Debug("riskengine: profile refresh failed; serving cached profile", "user", u.id, "err", err)
		}
		return err
	}
	prof := aggregateFromProfile(p)
	u.prof, u.profAt = &prof, now
	if gen == u.profGen {
		u.profForce = false
	}
	if quiet && started == u.flushStarted {
		u.sent = aggregate{}
	}
	return nil
}

// loadFlag reads the operator flag and installs it; ifMissing as for
// loadProfile.
func (e *Engine) loadFlag(u *userState, ifMissing bool) error {
	u.mu.Lock()
	gen := u.flagGen
	done := ifMissing && u.flagLoaded && !u.flagForce
	u.mu.Unlock()
	if done {
		return nil
	}

	ctx, cancel := context.WithTimeout(e.bgCtx, e.cfg.StoreTimeout)
	defer cancel()
	start := time.Now()
	f, err := e.cfg.Store.GetFlag(ctx, u.id)
	var view flagView
	switch {
	case err == nil:
		view = flagView{present: f.Level != "", level: f.Level, expires: f.ExpiresAt}
	case errors.Is(err, ErrNotFound):
		err = nil
	}
	e.observeCall("get_flag", start, err)

	now := e.cfg.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.flagRefreshing = false
	if err != nil {
		if u.flagLoaded {
			u.flagAt = now.Add(refreshRetry - e.cfg.FlagTTL)
			e.cfg.Logger.Debug("riskengine: flag refresh failed; serving cached flag", "user", u.id, "err", err)
		}
		return err
	}
	u.flag, u.flagLoaded, u.flagAt = view, true, now
	if gen == u.flagGen {
		u.flagForce = false
	}
	return nil
}

// observeCall reports one store call to the metrics hook.
func (e *Engine) observeCall(op string, start time.Time, err error) {
	if e.cfg.OnStoreCall != nil {
		e.cfg.OnStoreCall(op, time.Since(start), err)
	}
}
