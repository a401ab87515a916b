package decide

import (
	"errors"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"ztproxy/identity"
)

// DefaultMaxPrincipals bounds a route's limiter map when RateLimit does
// not say.
const DefaultMaxPrincipals = 100_000

// RateLimit is a route's token bucket per principal: RequestsPerSecond
// on average, bursts of Burst. It lives in one replica's memory; N
// replicas allow up to N times the rate (nothing is shared).
type RateLimit struct {
	RequestsPerSecond float64
	Burst             int
	// MaxPrincipals bounds the number of buckets kept; when it is reached,
	// full buckets (principals idle long enough to have their whole burst
	// back, indistinguishable from new ones) are dropped first, then
	// arbitrary ones.
	MaxPrincipals int
}

// Check reports what is wrong with the limit, if anything.
func (rl *RateLimit) Check() error {
	var errs []error
	if !(rl.RequestsPerSecond > 0) || math.IsInf(rl.RequestsPerSecond, 0) {
		errs = append(errs, errors.New("requests_per_second: must be a positive number"))
	}
	if rl.Burst < 1 {
		errs = append(errs, errors.New("burst: must be at least 1"))
	}
	if rl.MaxPrincipals < 0 {
		errs = append(errs, errors.New("max_principals: must not be negative"))
	}
	return errors.Join(errs...)
}

// limiters are one route's buckets, keyed by canonical principal id (or
// "ip:" and the client address for anonymous callers).
type limiters struct {
	limit rate.Limit
	burst int
	max   int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newLimiters(rl *RateLimit) *limiters {
	max := rl.MaxPrincipals
	if max <= 0 {
		max = DefaultMaxPrincipals
	}
	return &limiters{limit: rate.Limit(rl.RequestsPerSecond), burst: rl.Burst, max: max, m: map[string]*rate.Limiter{}}
}

// allow takes one token from key's bucket; when none is left it returns
// how long until one is.
func (l *limiters) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[key]
	if lim == nil {
		if len(l.m) >= l.max {
			l.evict(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict makes room: first every full bucket, then, if that freed less
// than an eighth of the map, arbitrary buckets until it has. Dropping a
// bucket only ever gives its principal a fresh burst.
func (l *limiters) evict(now time.Time) {
	for k, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) <= l.max-l.max/8-1 {
			break
		}
		delete(l.m, k)
	}
}

func (l *limiters) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// RateLimited refuses a request over its principal's rate: 429 with
// Retry-After.
type RateLimited struct{ RetryAfter time.Duration }

func (e *RateLimited) Error() string { return "rate limited" }

// RetryAfterSeconds is the Retry-After value: whole seconds, at least 1.
func (e *RateLimited) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// checkRate applies the route's rate limit to the request's principal.
func (e *Engine) checkRate(x *Exchange) error {
	l := x.Route.limiters
	if l == nil {
		return nil
	}
	if ok, wait := l.allow(PrincipalKey(x), e.opts.Now()); !ok {
		return &RateLimited{RetryAfter: wait}
	}
	return nil
}

// PrincipalKey is what per-principal state (rate limits, hash_user
// placement) is keyed by: the canonical principal id, or "ip:" and the
// client address for an anonymous caller.
func PrincipalKey(x *Exchange) string {
	if x.RC.Principal.Kind == identity.KindAnonymous || x.RC.Principal.ID == "" {
		return "ip:" + x.ClientIP()
	}
	return x.RC.Principal.ID
}
