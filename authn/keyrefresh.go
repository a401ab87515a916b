package authn

import (
	"errors"
	"fmt"
	"time"
)

// Defaults and bounds of KeyRefresh.
const (
	DefaultJWKSRefreshInterval    = 5 * time.Minute
	DefaultJWKSMinRefetchInterval = 10 * time.Second
	DefaultJWKSMaxStale           = time.Hour

	MinJWKSInterval     = time.Second
	MaxJWKSInterval     = 24 * time.Hour
	MaxJWKSMaxStaleness = 7 * 24 * time.Hour
)

// KeyRefresh says how a KeySet fetched from a URL is kept current. Zero
// fields take the defaults.
type KeyRefresh struct {
	// Interval is the longest a fetched key set is used before it is
	// fetched again; a shorter Cache-Control max-age on the JWKS response
	// wins, but never one below MinRefetchInterval. A key missing from a
	// successful fetch is refused at once, so a key the IdP withdraws stops
	// verifying tokens (cached verifications included) within Interval.
	// Default 5 minutes.
	Interval time.Duration
	// MinRefetchInterval is the least time between two fetches of the set,
	// whatever triggers them: tokens with an unknown kid, retries after a
	// failure. Tokens with an unknown kid in between are refused without a
	// fetch. Default 10 seconds.
	MinRefetchInterval time.Duration
	// MaxStale is how long the last good keys are still used after they
	// were due for a refresh while every refresh fails; after that tokens
	// are refused as "identity provider unavailable" until a fetch
	// succeeds. Default 1 hour.
	MaxStale time.Duration
}

// CheckAndSetDefaults fills zero fields with the defaults and checks the
// bounds, reporting every problem at once.
func (r *KeyRefresh) CheckAndSetDefaults() error {
	if r.Interval == 0 {
		r.Interval = DefaultJWKSRefreshInterval
	}
	if r.MinRefetchInterval == 0 {
		r.MinRefetchInterval = min(DefaultJWKSMinRefetchInterval, r.Interval)
	}
	if r.MaxStale == 0 {
		r.MaxStale = DefaultJWKSMaxStale
	}
	var errs []error
	if r.Interval < MinJWKSInterval || r.Interval > MaxJWKSInterval {
		errs = append(errs, fmt.Errorf("jwks_refresh_interval: must be between %s and %s, not %s", MinJWKSInterval, MaxJWKSInterval, r.Interval))
	}
	if r.MinRefetchInterval < MinJWKSInterval || r.MinRefetchInterval > r.Interval {
		errs = append(errs, fmt.Errorf("jwks_min_refetch_interval: must be between %s and jwks_refresh_interval (%s), not %s", MinJWKSInterval, r.Interval, r.MinRefetchInterval))
	}
	if r.MaxStale < 0 || r.MaxStale > MaxJWKSMaxStaleness {
		errs = append(errs, fmt.Errorf("jwks_max_stale: must not be negative or above %s, not %s", MaxJWKSMaxStaleness, r.MaxStale))
	}
	return errors.Join(errs...)
}
