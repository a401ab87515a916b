package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Reasons a key set is fetched, as reported to KeySetEvents.Fetch.
const (
	FetchInitial    = "initial"
	FetchScheduled  = "scheduled"
	FetchUnknownKID = "unknown_kid"
)

// KeySetEvents receive what a KeySet does, for metrics. Every field may be
// nil. Name is the configured name of the set (an IdP name), never a kid
// or anything from a token.
type KeySetEvents struct {
	// Fetch is called after every fetch attempt with its reason
	// (FetchInitial, FetchScheduled, FetchUnknownKID) and its error.
	Fetch func(name, reason string, err error)
	// RefetchRefused is called for a token whose kid is unknown when no
	// fetch was made for it because one happened less than
	// MinRefetchInterval ago.
	RefetchRefused func(name string)
}

// KeySetConfig configures a KeySet.
type KeySetConfig struct {
	// Name labels the set in logs and metrics: the IdP name, or
	// "assertion.trusted_jwks[i]".
	Name string
	// URL is the JWKS URL. Empty with Static set.
	URL string
	// Static, when URL is empty, is a fixed set that is never refreshed
	// (a JWKS file).
	Static []jose.JSONWebKey
	// Algs are the accepted signature algorithms; a token with another alg
	// is refused before any key is looked up.
	Algs []string
	// HTTPClient fetches URL; it is hardened with NewIdPHTTPClient.
	HTTPClient *http.Client
	Refresh    KeyRefresh
	Now        func() time.Time
	Logger     *slog.Logger
	Events     KeySetEvents
}

// KeySet is the signing keys of one issuer, fetched from its JWKS URL and
// kept current (see KeyRefresh) without putting a fetch on the path of
// requests that have usable keys: when the set is nine tenths of the way
// to its refresh time, the next request starts a fetch in the background.
// Only a request that finds the set past its refresh time with no failed
// fetch since (an idle proxy) waits for one. At most one fetch is in
// flight and fetches are at least MinRefetchInterval apart. It is safe for
// concurrent use and implements go-oidc's KeySet.
type KeySet struct {
	name    string
	url     string
	algs    []jose.SignatureAlgorithm
	client  *http.Client
	refresh KeyRefresh
	now     func() time.Time
	logger  *slog.Logger
	events  KeySetEvents

	snap atomic.Pointer[keySnapshot]
	// failing is set when the last fetch failed and cleared by a success.
	failing atomic.Bool

	mu        sync.Mutex
	inflight  *fetchCall // guarded by mu
	lastStart int64      // unix nanos of the last fetch start; guarded by mu
	lastErr   error      // guarded by mu
}

// fetchCall is one fetch; waiters block on done.
type fetchCall struct {
	done chan struct{}
	err  error
}

// keySnapshot is an immutable, fetched key set.
type keySnapshot struct {
	keys  []*trustedKey
	byKID map[string][]*trustedKey
	// Unix nanoseconds: softAt starts a background refresh, hardAt makes
	// requests wait for one, staleAt (hardAt + MaxStale) ends the use of
	// these keys while refreshes fail.
	softAt, hardAt, staleAt int64
}

// trustedKey is one verification key. The same object is carried into the
// next snapshot while the key stays published, so a cached verification
// can hold it and learn of its withdrawal from one atomic flag.
type trustedKey struct {
	set        *KeySet
	kid        string
	alg        string // the JWK's alg, "" when it has none
	public     any
	thumbprint string
	withdrawn  atomic.Bool
}

// NewKeySet checks cfg and returns a key set. It does no I/O: the first
// token fetches the keys.
func NewKeySet(cfg KeySetConfig) (*KeySet, error) {
	if err := cfg.Refresh.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if cfg.URL == "" && len(cfg.Static) == 0 {
		return nil, errors.New("key set: a JWKS URL or static keys are required")
	}
	if cfg.URL != "" {
		if err := checkEndpointURL(cfg.URL); err != nil {
			return nil, fmt.Errorf("key set %s: %w", cfg.Name, err)
		}
	}
	if len(cfg.Algs) == 0 {
		cfg.Algs = DefaultAllowedAlgs
	}
	k := &KeySet{
		name: cfg.Name, url: cfg.URL, client: NewIdPHTTPClient(cfg.HTTPClient), refresh: cfg.Refresh,
		now: cfg.Now, logger: cfg.Logger, events: cfg.Events,
	}
	for _, alg := range cfg.Algs {
		k.algs = append(k.algs, jose.SignatureAlgorithm(alg))
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.logger == nil {
		k.logger = slog.Default()
	}
	if cfg.URL == "" {
		keys, skipped := usableKeys(cfg.Static)
		if len(keys) == 0 {
			return nil, fmt.Errorf("key set %s: no usable signing keys (%s)", cfg.Name, skipped)
		}
		k.install(keys, math.MaxInt64, 0)
	}
	return k, nil
}

// KeySetFromSource returns the key set of source: a JWKS URL (https, or
// http on loopback), fetched on first use and kept current, or a JWKS
// file, read now and never refreshed. kc supplies everything else.
func KeySetFromSource(source string, kc KeySetConfig) (*KeySet, error) {
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		kc.URL = source
		return NewKeySet(kc)
	}
	data, err := os.ReadFile(source)
	if err != nil {
		return nil, err
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(data, &jwks); err != nil || len(jwks.Keys) == 0 {
		return nil, errors.New("not a JWK set")
	}
	kc.Static = jwks.Keys
	return NewKeySet(kc)
}

// Name returns the set's configured name.
func (k *KeySet) Name() string { return k.name }

// stillTrusted reports, on the cached-token path, whether a verification
// made with key may still be used at now (unix nanos): the key has not been
// withdrawn and its set needs no blocking refresh. It is two atomic loads
// and a comparison until the set nears its refresh time.
func (key *trustedKey) stillTrusted(now int64) bool {
	return !key.withdrawn.Load() && key.set.usable(now)
}

// usable reports whether keys of this set may still be trusted at now
// (unix nanos) without waiting for a fetch.
func (k *KeySet) usable(now int64) bool {
	s := k.snap.Load()
	if s != nil && now < s.softAt {
		return true
	}
	s, ok, _ := k.status(now)
	return ok && s != nil
}

// status decides whether the current keys may be used at now. Between
// the soft and the hard refresh time it starts a background refresh and
// says yes. With ok false and err nil the caller must wait for a fetch: no
// keys yet, or keys past their refresh time and no failed fetch since.
// After a failed fetch the old keys are used, with background retries,
// until MaxStale has passed; then err says the keys are too stale.
func (k *KeySet) status(now int64) (s *keySnapshot, ok bool, err error) {
	s = k.snap.Load()
	switch {
	case s == nil:
		return nil, false, nil
	case now < s.softAt:
		return s, true, nil
	case now < s.hardAt:
		k.begin(FetchScheduled, now)
		return s, true, nil
	case !k.failing.Load():
		return s, false, nil
	}
	k.begin(FetchScheduled, now)
	if now < s.staleAt {
		return s, true, nil
	}
	return s, false, fmt.Errorf("%w: the keys of %q could not be refreshed for longer than the allowed staleness: %w", ErrIdPUnavailable, k.name, k.lastError())
}

// current returns keys usable now, waiting (as long as ctx allows) for a
// fetch when there are none or they are past their refresh time.
func (k *KeySet) current(ctx context.Context) (*keySnapshot, error) {
	now := k.now().UnixNano()
	s, ok, err := k.status(now)
	if ok || err != nil {
		return s, err
	}
	reason := FetchScheduled
	if s == nil {
		reason = FetchInitial
	}
	call := k.begin(reason, now)
	if call == nil {
		// A fetch ended less than MinRefetchInterval ago: use its result
		// if it succeeded.
		if s, ok, err := k.status(k.now().UnixNano()); ok || err != nil {
			return s, err
		}
		return nil, fmt.Errorf("%w: keys of %q: %w", ErrIdPUnavailable, k.name, k.lastError())
	}
	waitErr := k.wait(ctx, call)
	if s, ok, err := k.status(k.now().UnixNano()); ok || err != nil {
		return s, err // the new keys, or the old ones within MaxStale
	}
	if waitErr == nil {
		waitErr = fmt.Errorf("%w: keys of %q are not available", ErrIdPUnavailable, k.name)
	}
	return nil, waitErr
}

// refetchForUnknownKID fetches the set again for a token whose kid it does
// not hold, unless the last fetch started less than MinRefetchInterval ago.
func (k *KeySet) refetchForUnknownKID(ctx context.Context) (*keySnapshot, error) {
	if k.url == "" {
		return nil, errUnknownKID
	}
	call := k.begin(FetchUnknownKID, k.now().UnixNano())
	if call == nil {
		if k.events.RefetchRefused != nil {
			k.events.RefetchRefused(k.name)
		}
		return nil, errUnknownKID
	}
	if err := k.wait(ctx, call); err != nil {
		return nil, err
	}
	return k.snap.Load(), nil
}

// errUnknownKID is the cause for a token signed with a key the set does
// not hold.
var errUnknownKID = errors.New("token signed with an unknown key (kid)")

// begin returns the fetch in flight, or starts one for reason unless the
// set is static or the last one started less than MinRefetchInterval ago
// (then it returns nil).
func (k *KeySet) begin(reason string, now int64) *fetchCall {
	if k.url == "" {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inflight != nil {
		return k.inflight
	}
	if k.lastStart != 0 && now-k.lastStart < int64(k.refresh.MinRefetchInterval) {
		return nil
	}
	c := &fetchCall{done: make(chan struct{})}
	k.inflight, k.lastStart = c, now
	go k.run(c, reason)
	return c
}

// wait blocks until call is done or ctx ends.
func (k *KeySet) wait(ctx context.Context, call *fetchCall) error {
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *KeySet) lastError() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lastErr == nil {
		return errors.New("no successful fetch yet")
	}
	return k.lastErr
}

// run performs one fetch, detached from the request that started it so
// that a client going away does not fail the fetch for everyone.
func (k *KeySet) run(c *fetchCall, reason string) {
	defer func() {
		k.mu.Lock()
		k.inflight = nil
		k.mu.Unlock()
		close(c.done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), k.client.Timeout)
	defer cancel()
	keys, ttl, err := k.fetch(ctx)
	if k.events.Fetch != nil {
		k.events.Fetch(k.name, reason, err)
	}
	if err != nil {
		k.failing.Store(true)
		k.mu.Lock()
		k.lastErr = err
		k.mu.Unlock()
		k.logger.Warn("authn: fetching signing keys failed; keeping the last good keys within jwks_max_stale",
			"keys", k.name, "reason", reason, "error", err)
		c.err = fmt.Errorf("%w: keys of %q: %w", ErrIdPUnavailable, k.name, err)
		return
	}
	k.install(keys, k.now().UnixNano(), ttl)
	k.failing.Store(false)
}

// install makes keys the current set, fetched at now and valid for ttl.
// Keys published before keep their identity; keys no longer published are
// marked withdrawn, which ends every cached verification made with them.
func (k *KeySet) install(keys []*trustedKey, now int64, ttl time.Duration) {
	old := k.snap.Load()
	s := &keySnapshot{byKID: make(map[string][]*trustedKey, len(keys))}
	if now == math.MaxInt64 {
		s.softAt, s.hardAt, s.staleAt = now, now, now
	} else {
		s.softAt = now + int64(ttl)*9/10
		s.hardAt = now + int64(ttl)
		s.staleAt = s.hardAt + int64(k.refresh.MaxStale)
	}
	kept := map[*trustedKey]bool{}
	for _, key := range keys {
		if prev := old.find(key.kid, key.thumbprint); prev != nil {
			key = prev
			kept[prev] = true
		} else {
			key.set = k
		}
		s.keys = append(s.keys, key)
		s.byKID[key.kid] = append(s.byKID[key.kid], key)
	}
	k.snap.Store(s)
	if old == nil {
		k.logger.Info("authn: signing keys loaded", "keys", k.name, "count", len(s.keys))
		return
	}
	withdrawn := 0
	for _, key := range old.keys {
		if !kept[key] {
			key.withdrawn.Store(true)
			withdrawn++
		}
	}
	if added := len(s.keys) - len(kept); added > 0 || withdrawn > 0 {
		k.logger.Info("authn: signing keys changed", "keys", k.name, "added", added, "withdrawn", withdrawn)
	}
}

// find returns the key with kid and thumbprint, or nil.
func (s *keySnapshot) find(kid, thumbprint string) *trustedKey {
	if s == nil {
		return nil
	}
	for _, key := range s.byKID[kid] {
		if key.thumbprint == thumbprint {
			return key
		}
	}
	return nil
}
