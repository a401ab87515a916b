package authn

import (
	"errors"
	"fmt"
	"time"
)

// Failure modes of userinfo enrichment (UserinfoConfig.OnFailure).
const (
	// UserinfoDeny refuses a token whose userinfo could not be fetched.
	UserinfoDeny = "deny"
	// UserinfoProceed accepts it with the claims of the token alone.
	UserinfoProceed = "proceed"
)

// Userinfo enrichment defaults and bounds.
const (
	DefaultUserinfoCacheTTL  = 5 * time.Minute
	DefaultUserinfoCacheSize = 10000
	DefaultUserinfoTimeout   = 3 * time.Second
	// MaxUserinfoCacheTTL bounds how stale an enriched email may get.
	MaxUserinfoCacheTTL = 24 * time.Hour
	// MaxUserinfoTimeout is the hardened IdP client's own timeout.
	MaxUserinfoTimeout = defaultHTTPTimeout
	// userinfoRetryAfter is how long a failed lookup stands for its
	// subject before the IdP is asked again, so that an outage does not
	// turn every request into an outbound call.
	userinfoRetryAfter = 5 * time.Second
)

// UserinfoConfig turns on identity enrichment for one IdP's bearer tokens:
// the claims an access token lacks (Amazon Cognito's have no email) are
// read from the IdP's userinfo endpoint, called with the token itself.
type UserinfoConfig struct {
	// URL replaces the discovery document's userinfo_endpoint; it is
	// required when the IdP's keys come from a jwks_url (no discovery).
	URL string
	// CacheTTL is how long a subject's userinfo is used before it is
	// fetched again (DefaultUserinfoCacheTTL when zero).
	CacheTTL time.Duration
	// CacheSize bounds the subjects kept (DefaultUserinfoCacheSize when
	// zero).
	CacheSize int
	// Timeout bounds one userinfo request (DefaultUserinfoTimeout when
	// zero, at most MaxUserinfoTimeout).
	Timeout time.Duration
	// OnFailure is UserinfoDeny (the default) or UserinfoProceed. A
	// userinfo document for another subject is refused in both modes.
	OnFailure string
}

// CheckAndSetDefaults validates c and fills in defaults, reporting every
// problem at once.
func (c *UserinfoConfig) CheckAndSetDefaults() error {
	var errs []error
	if c.URL != "" {
		if err := checkEndpointURL(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("userinfo.url: %w", err))
		}
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultUserinfoCacheTTL
	}
	if c.CacheTTL < time.Second || c.CacheTTL > MaxUserinfoCacheTTL {
		errs = append(errs, fmt.Errorf("userinfo.cache_ttl: must be between 1s and %s, not %s", MaxUserinfoCacheTTL, c.CacheTTL))
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultUserinfoCacheSize
	}
	if c.CacheSize < 0 {
		errs = append(errs, errors.New("userinfo.cache_size: must not be negative"))
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultUserinfoTimeout
	}
	if c.Timeout < 0 || c.Timeout > MaxUserinfoTimeout {
		errs = append(errs, fmt.Errorf("userinfo.timeout: must be greater than 0 and at most %s, not %s", MaxUserinfoTimeout, c.Timeout))
	}
	switch c.OnFailure {
	case "":
		c.OnFailure = UserinfoDeny
	case UserinfoDeny, UserinfoProceed:
	default:
		errs = append(errs, fmt.Errorf("userinfo.on_failure: must be %q or %q, not %q", UserinfoDeny, UserinfoProceed, c.OnFailure))
	}
	return errors.Join(errs...)
}
