package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// BrowserIdPConfig is one identity provider users sign in with.
type BrowserIdPConfig struct {
	Name         string
	Issuer       string // exact; go-oidc compares it byte for byte
	ClientID     string
	ClientSecret string
	// Scopes requested at sign-in; "openid" is added when missing.
	Scopes         []string
	GroupsClaim    string // default "groups"; Cognito: "cognito:groups"
	ClaimsToExpose []string
	// ExtraAuthParams are added to the authorization request (for
	// example Cognito's identity_provider).
	ExtraAuthParams map[string]string
	// LogoutURL is used for sign-out when the IdP has no
	// end_session_endpoint (Cognito's hosted UI /logout URL).
	LogoutURL   string
	AllowedAlgs []string
	// StepUpACR is sent as acr_values when policy asks for step-up, and an
	// ID token asserting one of these values satisfies "mfa".
	StepUpACR string
	// StepUpMaxAge is sent as max_age for step-up (0: max_age=0, forcing
	// a fresh authentication).
	StepUpMaxAge time.Duration
	// KeyRefresh says how the IdP's signing keys are kept current.
	KeyRefresh KeyRefresh
}

// checkAndSetDefaults validates one sign-in IdP and fills its defaults.
func (idp *BrowserIdPConfig) checkAndSetDefaults() error {
	var errs []error
	if err := checkEndpointURL(idp.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if idp.ClientID == "" || idp.ClientSecret == "" {
		errs = append(errs, errors.New("client_id and client_secret are required for browser sign-in"))
	}
	if idp.GroupsClaim == "" {
		idp.GroupsClaim = DefaultGroupsClaim
	}
	if len(idp.AllowedAlgs) == 0 {
		idp.AllowedAlgs = DefaultAllowedAlgs
	}
	if err := idp.KeyRefresh.CheckAndSetDefaults(); err != nil {
		errs = append(errs, err)
	}
	if !slices.Contains(idp.Scopes, "openid") {
		idp.Scopes = append([]string{"openid"}, idp.Scopes...)
	}
	return errors.Join(errs...)
}

// SessionRecord is the server-side half of a browser session: what must
// never travel in the cookie.
type SessionRecord struct {
	ID, UserID, IdP string
	// SID is the IdP's session id (the ID token's "sid" claim), for
	// back-channel logout; "" when the IdP sent none.
	SID          string
	RefreshToken string
	IDToken      string // for id_token_hint at sign-out
	TokenExpiry  time.Time
	ExpiresAt    time.Time
}

// Errors of a SessionStore.
var (
	ErrSessionNotFound = errors.New("session not found")
	ErrSessionRevoked  = errors.New("session revoked")
	// ErrRevocationPending is wrapped by RevokeSession when the session is
	// refused on this replica at once but the shared store could not
	// record the revocation yet; the store keeps retrying in the
	// background and other replicas follow once it succeeds.
	ErrRevocationPending = errors.New("session revoked on this replica; the shared store has not recorded it yet")
)

// ErrStoreUnavailable is wrapped by the errors of browser sign-in paths
// that could not reach the session store. They fail closed: the proxy
// answers 503 and nothing is granted on a guess.
var ErrStoreUnavailable = errors.New("session store unavailable")

// storeUnavailable wraps a session store failure.
func storeUnavailable(what string, err error) error {
	return fmt.Errorf("authn: %s: %w: %w", what, ErrStoreUnavailable, err)
}

// SessionStore keeps server-side session state shared by all replicas.
type SessionStore interface {
	SaveSession(ctx context.Context, rec SessionRecord) error
	// LoadSession returns ErrSessionNotFound or ErrSessionRevoked.
	LoadSession(ctx context.Context, id string) (SessionRecord, error)
	// RevokeSession refuses the session on this replica at once and
	// records the revocation in the shared store. It returns
	// ErrSessionNotFound, or an error wrapping ErrRevocationPending when
	// only the local half succeeded (the store write is retried).
	RevokeSession(ctx context.Context, id string, at time.Time) error
	UpdateSessionTokens(ctx context.Context, id, refreshToken, idToken string, tokenExpiry time.Time) error
	// IsRevoked is on the hot path; implementations cache it (for at most
	// the configured revocation TTL).
	IsRevoked(ctx context.Context, id string) (bool, error)
}

// BrowserConfig configures browser sign-in.
type BrowserConfig struct {
	IdPs []BrowserIdPConfig
	// ExternalURL is the proxy's origin; the redirect URI is
	// ExternalURL + "/.ztp/callback".
	ExternalURL *url.URL
	Cookies     SessionCodecConfig
	// Lifetime bounds a session from sign-in; IdleTimeout ends one unused
	// for that long.
	Lifetime, IdleTimeout time.Duration
	Store                 SessionStore
	// ReturnHostAllowed says whether sign-in may return to a host name
	// (canonical, without a port); only ExternalURL's scheme and port are
	// ever accepted with it.
	ReturnHostAllowed func(host string) bool
	// RefreshSkew refreshes IdP tokens this long before they expire.
	RefreshSkew time.Duration
	// HTTPClient makes every call to the IdPs (discovery, JWKS, token,
	// refresh); it is hardened with NewIdPHTTPClient.
	HTTPClient *http.Client
	// KeySetEvents receive key set fetches, for metrics.
	KeySetEvents KeySetEvents
	Now          func() time.Time
	Logger       *slog.Logger
	// WebAuthn, when set, enables proxy-verified security keys for
	// step-up. NewBrowser fills its Codec and Now.
	WebAuthn *WebAuthnConfig
}

// CheckAndSetDefaults validates c and fills defaults, reporting every
// problem at once. Secrets never appear in its errors.
func (c *BrowserConfig) CheckAndSetDefaults() error {
	var errs []error
	if len(c.IdPs) == 0 {
		errs = append(errs, errors.New("idps: at least one identity provider with client_id is required for browser sign-in"))
	}
	names := map[string]bool{}
	for i := range c.IdPs {
		idp := &c.IdPs[i]
		if idp.Name == "" || names[idp.Name] {
			errs = append(errs, fmt.Errorf("idps[%d].name: missing or duplicate", i))
		}
		names[idp.Name] = true
		if err := idp.checkAndSetDefaults(); err != nil {
			errs = append(errs, fmt.Errorf("idps[%d]: %w", i, err))
		}
	}
	if c.ExternalURL == nil || c.ExternalURL.Host == "" {
		errs = append(errs, errors.New("external_url: required for browser sign-in"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("store: a session store is required for browser sign-in"))
	}
	if c.Lifetime <= 0 {
		c.Lifetime = 12 * time.Hour
	}
	if c.IdleTimeout <= 0 || c.IdleTimeout > c.Lifetime {
		c.IdleTimeout = c.Lifetime
	}
	if c.RefreshSkew <= 0 {
		c.RefreshSkew = time.Minute
	}
	if c.ReturnHostAllowed == nil {
		c.ReturnHostAllowed = func(string) bool { return false }
	}
	c.HTTPClient = NewIdPHTTPClient(c.HTTPClient)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := c.Cookies.CheckAndSetDefaults(); err != nil {
		errs = append(errs, fmt.Errorf("session: %w", err))
	}
	return errors.Join(errs...)
}
