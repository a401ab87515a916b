package cae

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"ztproxy/store"
)

// Source is what the evaluator reads.
type Source interface {
	store.ChangeFeed
	store.FlagLister
	GetFlag(ctx context.Context, userID string) (store.Flag, error)
}

// Config configures an Evaluator.
type Config struct {
	Store Source
	// PollInterval is how often the change feed is read (default 250 ms):
	// the bound on how late a pushed change reaches this replica.
	PollInterval time.Duration
	// Rescan is how often the whole flag set is re-read (default 5 min),
	// a safety net for changes the feed lost.
	Rescan time.Duration
	// Overlap is how far back each poll reads again (default 5 s), for
	// changes published by replicas whose clock is behind.
	Overlap time.Duration
	// OnSessions is called with revoked session ids; OnFlag with a user
	// whose flag changed; OnDevice with a device whose record changed.
	OnSessions func(ids []string)
	OnFlag     func(userID string)
	OnDevice   func(deviceID string)
	// OnPoll, when set, observes every poll (metrics).
	OnPoll func(err error, applied int)
	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) checkAndSetDefaults() error {
	if c.Store == nil {
		return errors.New("cae: a store is required")
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.Rescan <= 0 {
		c.Rescan = 5 * time.Minute
	}
	if c.Overlap <= 0 {
		c.Overlap = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// ErrNotReady is what Compromised answers before the flags could be read
// once: the proxy cannot tell who is compromised, so it refuses (503).
var ErrNotReady = errors.New("cae: the compromised set has not been loaded from the store yet")

// Evaluator applies the change feed. It is safe for concurrent use.
type Evaluator struct {
	cfg Config
	// compromised holds the principals flagged compromised and those
	// flagged step_up (by level), copied on write.
	compromised atomic.Pointer[map[string]store.Flag]

	mu       sync.Mutex // guards since and seen, used by the poll loop
	since    time.Time
	seen     map[string]time.Time
	lastScan time.Time
	failed   bool

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New checks cfg. Start loads the flags and begins polling.
func New(cfg Config) (*Evaluator, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Evaluator{cfg: cfg, seen: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Compromised reports whether principalID is flagged compromised, with
// the flag's reason. It reads no store: the set is in memory.
func (e *Evaluator) Compromised(principalID string) (reason string, compromised bool, err error) {
	m := e.compromised.Load()
	if m == nil {
		return "", false, ErrNotReady
	}
	f, ok := (*m)[principalID]
	if !ok || f.Level != store.FlagCompromised || !f.ExpiresAt.IsZero() && !e.cfg.Now().Before(f.ExpiresAt) {
		return "", false, nil
	}
	return f.Reason, true, nil
}

// StepUpSince reports whether principalID must authenticate again unless
// it did so after the returned time (a step_up flag). It reads no store.
func (e *Evaluator) StepUpSince(principalID string) (time.Time, bool) {
	m := e.compromised.Load()
	if m == nil {
		return time.Time{}, false
	}
	f, ok := (*m)[principalID]
	if !ok || f.Level != store.FlagStepUp || !f.ExpiresAt.IsZero() && !e.cfg.Now().Before(f.ExpiresAt) {
		return time.Time{}, false
	}
	return f.SetAt, true
}

// tracked reports whether the evaluator keeps f in memory.
func tracked(f store.Flag) bool {
	return f.Level == store.FlagCompromised || f.Level == store.FlagStepUp
}

// Start loads the flags (waiting at most until ctx ends; on failure the
// poll loop keeps trying) and starts polling the feed.
func (e *Evaluator) Start(ctx context.Context) error {
	e.mu.Lock()
	e.since = e.cfg.Now()
	err := e.rescan(ctx)
	e.mu.Unlock()
	go e.run()
	return err
}

// Close stops polling.
func (e *Evaluator) Close() {
	e.once.Do(func() { close(e.stop) })
	<-e.done
}

func (e *Evaluator) run() {
	defer close(e.done)
	tick := time.NewTicker(e.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), max(2*time.Second, e.cfg.PollInterval))
			e.Poll(ctx)
			cancel()
		}
	}
}

// rescan replaces the compromised set with the store's flags; e.mu held.
func (e *Evaluator) rescan(ctx context.Context) error {
	flags, err := e.cfg.Store.ListFlags(ctx)
	if err != nil {
		return fmt.Errorf("cae: loading flags: %w", err)
	}
	m := make(map[string]store.Flag)
	for _, f := range flags {
		if tracked(f) {
			m[f.UserID] = f
		}
	}
	e.compromised.Store(&m)
	e.lastScan = e.cfg.Now()
	return nil
}

// Poll reads the feed once and applies what is new; the loop calls it
// every PollInterval (tests may call it directly).
func (e *Evaluator) Poll(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	if e.compromised.Load() == nil || e.failed || now.Sub(e.lastScan) >= e.cfg.Rescan {
		if err := e.rescan(ctx); err != nil {
			e.pollFailed(err)
			return
		}
	}
	changes, err := e.cfg.Store.ChangesSince(ctx, e.since.Add(-e.cfg.Overlap))
	if err != nil {
		e.pollFailed(err)
		return
	}
	applied := 0
	for _, c := range changes {
		if _, dup := e.seen[c.Seq]; dup {
			continue
		}
		e.seen[c.Seq] = c.At
		e.apply(ctx, c)
		applied++
	}
	e.since = now
	for seq, at := range e.seen {
		if at.Before(now.Add(-2 * e.cfg.Overlap)) {
			delete(e.seen, seq)
		}
	}
	if e.failed {
		e.cfg.Logger.Info("cae: change feed readable again")
	}
	e.failed = false
	if e.cfg.OnPoll != nil {
		e.cfg.OnPoll(nil, applied)
	}
}

func (e *Evaluator) pollFailed(err error) {
	if !e.failed {
		e.cfg.Logger.Warn("cae: change feed unreadable; pushed changes wait for the caches' TTLs", "err", err)
	}
	e.failed = true
	if e.cfg.OnPoll != nil {
		e.cfg.OnPoll(err, 0)
	}
}

// apply acts on one change; e.mu held.
func (e *Evaluator) apply(ctx context.Context, c store.Change) {
	switch c.Kind {
	case store.ChangeSessions:
		if e.cfg.OnSessions != nil {
			e.cfg.OnSessions(c.SessionIDs)
		}
	case store.ChangeFlag:
		e.refreshFlag(ctx, c.UserID)
		if e.cfg.OnFlag != nil {
			e.cfg.OnFlag(c.UserID)
		}
	case store.ChangeDevice:
		if e.cfg.OnDevice != nil {
			e.cfg.OnDevice(c.DeviceID)
		}
	}
}

// refreshFlag re-reads one principal's flag into the compromised set
// (copy on write); e.mu held. A failed read marks the poll failed so the
// next one rescans everything.
func (e *Evaluator) refreshFlag(ctx context.Context, id string) {
	f, err := e.cfg.Store.GetFlag(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.failed = true
		return
	}
	old := e.compromised.Load()
	m := make(map[string]store.Flag, len(*old)+1)
	for k, v := range *old {
		m[k] = v
	}
	delete(m, id)
	if err == nil && tracked(f) {
		m[id] = f
	}
	e.compromised.Store(&m)
}

// Apply applies a flag this replica itself just wrote (set, or cleared
// when cleared is true), at once rather than at the next poll.
func (e *Evaluator) Apply(f store.Flag, cleared bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.compromised.Load()
	m := map[string]store.Flag{}
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	delete(m, f.UserID)
	if !cleared && tracked(f) {
		m[f.UserID] = f
	}
	e.compromised.Store(&m)
}
