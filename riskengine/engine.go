// Package riskengine scores every request 0–100 from the user's behavioural
// profile: new networks, user agents and devices, unusual hours, request
// velocity, failed-auth bursts, impossible travel and operator flags. Each
// contributing signal is reported as a stable reason code with its points.
//
// The hot path never waits on the store for a known user. Profiles and
// flags are cached and refreshed in the background after their TTL; a cold
// user's first read is shared by concurrent requests. Observations are
// aggregated in memory and written behind, one ApplyObservation per user
// with something to write per FlushInterval, and on Close. At most
// MaxUsers users are cached (see userTable); an evicted user's pending
// observations are written before it is forgotten.
//
// A request teaches the profile its network, user agent, device and hour
// only when it scored low, or medium with a fresh MFA authentication (the
// step-up the policy asked for). Otherwise an attacker's second request
// would no longer look new.
package riskengine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"ztproxy/identity"
)

// Engine scores requests and records observations. It is safe for
// concurrent use.
type Engine struct {
	cfg    Config
	scorer scorer

	users    *userTable
	profiles singleflight.Group

	// dirty lists the users with something to write, each once
	// (userState.queued); Flush takes the list and writes only them.
	dirtyMu sync.Mutex
	dirty   []*userState
	flags   singleflight.Group

	// writer names this engine's batches in the store (random per
	// process); lastBatch is the last batch number handed out.
	writer    string
	lastBatch atomic.Int64

	// bgCtx bounds background store calls; Close cancels it.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New checks cfg, fills in defaults and starts the write-behind loop.
func New(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, scorer: newScorer(cfg), users: newUserTable(cfg.MaxUsers), stop: make(chan struct{}), done: make(chan struct{})}
	var id [8]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+).
	e.writer = hex.EncodeToString(id[:])
	e.bgCtx, e.bgCancel = context.WithCancel(context.Background())
	go e.run()
	return e, nil
}

// userState is everything the engine holds for one user. mu guards all of
// it.
type userState struct {
	mu sync.Mutex
	id string

	// prof is the profile as last read; nil until the first read succeeds.
	prof           *aggregate
	profAt         time.Time
	profRefreshing bool
	profForce      bool // Invalidate: the next Score must read synchronously
	profGen        int

	flag           flagView
	flagLoaded     bool
	flagAt         time.Time
	flagRefreshing bool
	flagForce      bool
	flagGen        int

	// sent holds what was handed to the store since prof was read; pend
	// is what still needs writing; unacked is the batch handed over whose
	// outcome is not known yet (it is also in sent). flushStarted counts
	// flushes begun, flushing those in flight.
	sent, pend   aggregate
	unacked      *batch
	flushStarted int
	flushing     int

	velocity   velocity
	failedAuth *failedAuthRing // nil until the first failure
	lastAccess time.Time
	// queued is set while the user is on Engine.dirty; evicted once the
	// user has left the table for good.
	queued  bool
	evicted bool

	lru lruLinks
}

// flagView is a cached operator flag.
type flagView struct {
	present bool
	level   string
	expires time.Time
}

func (f flagView) active(t time.Time) bool {
	return f.present && (f.expires.IsZero() || t.Before(f.expires))
}

func (u *userState) view() view { return view{u.prof, &u.sent, &u.pend} }

// requestFacts are the parts of a request the engine scores and learns,
// computed before taking the user's lock.
type requestFacts struct {
	t          time.Time
	network    netip.Prefix
	hasNetwork bool
	uaFamily   string
	device     string
	hour       int
	loc        location
	// deviceSignals are the inventory's signals for the client
	// certificate, known before the user's state is read.
	deviceSignals signalSet
}

// Score assesses one request and records it. A non-nil error always comes
// with a Risk whose Level is set according to OnStoreError; it is never a
// silent zero.
func (e *Engine) Score(ctx context.Context, rc *identity.RequestContext) (identity.Risk, error) {
	if rc == nil {
		return e.scorer.unavailable(e.cfg.OnStoreError, nil), errors.New("riskengine: nil request context")
	}
	if rc.Principal.Kind == identity.KindAnonymous {
		return identity.NeutralRisk, nil
	}
	if rc.Principal.ID == "" {
		return e.scorer.unavailable(e.cfg.OnStoreError, nil), errors.New("riskengine: principal has no id")
	}
	now := e.cfg.Now()
	facts := e.factsOf(rc, now)
	u, hit, loadErr := e.ready(ctx, rc.Principal.ID, now)
	defer u.mu.Unlock()
	if e.cfg.OnCache != nil {
		e.cfg.OnCache(hit)
	}
	u.lastAccess = now
	if loadErr != nil {
		return e.scoreDegraded(u, facts, loadErr)
	}
	risk := e.scorer.risk(e.signals(u, &facts))
	u.pend.count(facts.t, facts.loc)
	e.markDirty(u)
	if p := &rc.Principal; p.EmailVerified && p.Email != "" && u.view().email() != p.Email {
		u.pend.email = p.Email
	}
	if e.shouldLearn(risk.Level, &rc.Principal, now) {
		u.pend.learn(facts.network, facts.hasNetwork, facts.uaFamily, facts.device, facts.hour,
			decayScale(facts.t, e.cfg.HourEpoch, e.cfg.HourHalfLife), facts.t.Unix())
	}
	return risk, nil
}

// scoreDegraded answers per OnStoreError when the store could not be read.
// Whatever is cached still counts (allow_cached scores with it); the
// request is counted but teaches the profile nothing.
func (e *Engine) scoreDegraded(u *userState, facts requestFacts, cause error) (identity.Risk, error) {
	var base *identity.Risk
	if u.prof != nil {
		r := e.scorer.risk(e.signals(u, &facts))
		base = &r
	}
	mode := e.cfg.OnStoreError
	if mode == StoreErrorAllowCached && (u.prof == nil || !u.flagLoaded) {
		mode = StoreErrorStepUp // a profile without its flag is not a cached answer
	}
	u.pend.count(facts.t, facts.loc)
	e.markDirty(u)
	return e.scorer.unavailable(mode, base), fmt.Errorf("riskengine: store unavailable: %w", cause)
}

// factsOf extracts what the engine needs from the request.
func (e *Engine) factsOf(rc *identity.RequestContext, now time.Time) requestFacts {
	f := requestFacts{t: rc.Time, uaFamily: uaFamily(rc.UserAgent), device: deviceKey(&rc.Device), deviceSignals: deviceSignals(rc)}
	if f.t.IsZero() {
		f.t = now
	}
	f.network, f.hasNetwork = networkOf(rc.ClientIP)
	f.hour = hourOfWeek(f.t, e.cfg.Location)
	if e.cfg.GeoIP != nil && rc.ClientIP.IsValid() {
		if lat, lon, ok := e.cfg.GeoIP.Lookup(rc.ClientIP.Unmap()); ok {
			f.loc = location{lat: lat, lon: lon, at: f.t, ok: true}
		}
	}
	return f
}

// signals evaluates every signal for one request against the user's state.
// It also counts the request towards velocity. u.mu is held and u.prof is
// not nil.
func (e *Engine) signals(u *userState, f *requestFacts) signalSet {
	s := f.deviceSignals
	add := func(x signal, fired bool) {
		if fired {
			s |= signalSet(x)
		}
	}
	if u.flag.active(f.t) {
		add(sigFlagCompromised, u.flag.level == FlagCompromised)
		add(sigFlagWatch, u.flag.level != FlagCompromised) // unknown levels count as watch
	}
	v := u.view()
	add(sigImpossibleTravel, f.loc.ok && impossibleTravel(v.lastLocation(), f.loc))
	add(sigVelocity, u.velocity.hit(f.t, e.cfg.VelocityFactor, e.cfg.VelocityFloor))
	add(sigFailedAuth, u.failedAuth.count(f.t, e.cfg.FailedAuthWindow) >= e.cfg.FailedAuthThreshold)
	if !v.known() {
		return s | signalSet(sigNewUser)
	}
	since := f.t.Add(-e.cfg.NetworkWindow).Unix()
	add(sigNewNetwork, f.hasNetwork && v.networkSeen(f.network) < since)
	add(sigNewUserAgent, v.userAgentSeen(f.uaFamily) < since)
	add(sigNewDevice, f.device != "" && v.deviceSeen(f.device) < since)
	if v.requests() >= e.cfg.MinHistory {
		share, ok := v.hourShare(f.hour)
		add(sigUnusualHour, ok && share < e.cfg.UnusualHourFraction/168)
	}
	return s
}

// shouldLearn reports whether a request may teach the profile: low risk
// always, medium only right after an MFA authentication, high never.
func (e *Engine) shouldLearn(level identity.RiskLevel, p *identity.Principal, now time.Time) bool {
	switch level {
	case identity.RiskLow:
		return true
	case identity.RiskMedium:
		return !p.AuthTime.IsZero() && now.Sub(p.AuthTime) <= e.cfg.LearnMaxAuthAge && p.HasMFA()
	default:
		return false
	}
}

// RecordFailedAuth notes a failed authentication for userID. The id should
// come from a verified source (for example a validly signed but expired
// token): every id recorded is eventually written to the store.
func (e *Engine) RecordFailedAuth(userID string) {
	if userID == "" {
		return
	}
	now := e.cfg.Now()
	for {
		u := e.user(userID, now)
		u.mu.Lock()
		if u.evicted {
			u.mu.Unlock()
			continue
		}
		if u.failedAuth == nil {
			u.failedAuth = new(failedAuthRing)
		}
		u.failedAuth.add(now)
		u.pend.failedAuth++
		u.pend.dirty = true
		e.markDirty(u)
		u.lastAccess = now
		u.mu.Unlock()
		return
	}
}

// Invalidate drops the cached profile and flag of userID, so that its next
// request reads both from the store (after an operator changed the flag on
// this replica). The old values remain only as allow_cached's fallback.
func (e *Engine) Invalidate(userID string) {
	if u := e.users.peek(userID); u != nil {
		u.mu.Lock()
		u.profForce, u.flagForce = true, true
		u.profGen++
		u.flagGen++
		u.mu.Unlock()
	}
	e.profiles.Forget(userID)
	e.flags.Forget(userID)
}

// user returns the state of id, creating it if needed (which may evict the
// least recently used user; see userTable).
func (e *Engine) user(id string, now time.Time) *userState {
	return e.users.get(id, now)
}

// evictIdle evicts the users idle for IdleEvict as of now.
func (e *Engine) evictIdle(now time.Time) {
	e.users.evictIdle(now.Add(-e.cfg.IdleEvict))
}

// markDirty puts u on the list of users Flush writes, once. u.mu is held.
func (e *Engine) markDirty(u *userState) {
	if u.queued {
		return
	}
	u.queued = true
	e.dirtyMu.Lock()
	e.dirty = append(e.dirty, u)
	e.dirtyMu.Unlock()
}

// Close stops the background loop, flushes everything pending and cancels
// background store reads. Score should not be called afterwards: cached
// users are still scored, but what they record is written only by another
// Flush or Close, and cold users get the OnStoreError answer.
func (e *Engine) Close(ctx context.Context) error {
	e.stopOnce.Do(func() {
		close(e.stop)
		<-e.done
	})
	err := e.Flush(ctx)
	e.bgCancel()
	return err
}

// run is the write-behind loop.
func (e *Engine) run() {
	defer close(e.done)
	ticker := time.NewTicker(e.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-ticker.C:
			ctx, cancel := context.WithTimeout(e.bgCtx, e.cfg.FlushInterval)
			if err := e.Flush(ctx); err != nil {
				e.cfg.Logger.Warn("riskengine: write-behind flush failed; will retry", "err", err)
			}
			cancel()
			e.evictIdle(e.cfg.Now())
		}
	}
}
