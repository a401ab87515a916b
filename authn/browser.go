package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"ztproxy/identity"
)

// Browser signs users in with OpenID Connect (authorization code + PKCE)
// and authenticates requests by their sealed session cookie. It returns
// results and errors; the proxy turns them into HTTP responses.
type Browser struct {
	cfg     BrowserConfig
	codec   *SessionCodec
	idps    map[string]*browserIdP
	first   string
	refresh singleflight.Group
	// loginStamps orders this replica's sign-in attempts.
	loginStamps loginStamps
	// returnTargets are where sign-in may send the browser back to.
	returnTargets ReturnTargets
	// webauthn is nil unless BrowserConfig.WebAuthn is set.
	webauthn *WebAuthn
}

// browserIdP is one sign-in provider, discovered on first use.
type browserIdP struct {
	cfg    BrowserIdPConfig
	client *discovery[oidcClient]
}

// oidcClient is everything a sign-in needs from a discovered provider.
type oidcClient struct {
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	// logoutVerifier checks back-channel logout tokens: same keys,
	// issuer and audience, but exp is optional there and checked by
	// verifyLogoutToken itself.
	logoutVerifier *oidc.IDTokenVerifier
	endSession     string
	// revocation is the RFC 7009 endpoint, "" when not advertised.
	revocation string
}

// newOIDCClient builds the sign-in client of a discovered provider. ID
// tokens are verified against ztproxy's key set (refreshed, bounded,
// withdrawn keys refused at once), never go-oidc's remote key set.
func newOIDCClient(p *oidc.Provider, ic BrowserIdPConfig, redirect string, cfg *BrowserConfig) (*oidcClient, error) {
	meta, err := discoveredEndpoints(p, true)
	if err != nil {
		return nil, err
	}
	keys, err := NewKeySet(KeySetConfig{
		Name: ic.Name, URL: meta.JWKSURL, Algs: ic.AllowedAlgs, HTTPClient: cfg.HTTPClient,
		Refresh: ic.KeyRefresh, Now: cfg.Now, Logger: cfg.Logger, Events: cfg.KeySetEvents,
	})
	if err != nil {
		return nil, err
	}
	return &oidcClient{
		oauth: oauth2.Config{
			ClientID: ic.ClientID, ClientSecret: ic.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: redirect, Scopes: ic.Scopes,
		},
		verifier: oidc.NewVerifier(ic.Issuer, keys, &oidc.Config{
			ClientID: ic.ClientID, SupportedSigningAlgs: ic.AllowedAlgs, Now: cfg.Now,
		}),
		logoutVerifier: oidc.NewVerifier(ic.Issuer, keys, &oidc.Config{
			ClientID: ic.ClientID, SupportedSigningAlgs: ic.AllowedAlgs, Now: cfg.Now, SkipExpiryCheck: true,
		}),
		endSession: meta.EndSession,
		revocation: meta.Revocation,
	}, nil
}

// LoginRequiredError means the request has no usable session: the caller
// sends browsers to sign-in and sets Clear to remove a bad cookie.
type LoginRequiredError struct {
	Reason string
	Clear  []*http.Cookie
	// Code, when set, replaces "login_required" in the audit line (for
	// example "refresh_refused").
	Code string
}

// storeTimeout bounds one session store call on a request path, so that a
// hung store costs the user seconds, not the SDK's full retry budget.
const storeTimeout = 5 * time.Second

func (e *LoginRequiredError) Error() string { return "sign-in required: " + e.Reason }

// NewBrowser validates cfg. It does no I/O: providers are discovered on
// first use.
func NewBrowser(cfg BrowserConfig) (*Browser, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, fmt.Errorf("authn: browser sign-in: %w", err)
	}
	codec, err := NewSessionCodec(cfg.Cookies)
	if err != nil {
		return nil, err
	}
	b := &Browser{cfg: cfg, codec: codec, idps: map[string]*browserIdP{}, first: cfg.IdPs[0].Name,
		returnTargets: ReturnTargetsFor(cfg.ExternalURL, cfg.ReturnHostAllowed)}
	redirect := strings.TrimSuffix(cfg.ExternalURL.String(), "/") + CallbackPath
	for _, ic := range cfg.IdPs {
		ic := ic
		bi := &browserIdP{cfg: ic}
		bi.client = &discovery[oidcClient]{
			name: ic.Name, issuer: ic.Issuer, client: cfg.HTTPClient, now: cfg.Now, logger: cfg.Logger,
			build: func(p *oidc.Provider) (*oidcClient, error) {
				return newOIDCClient(p, ic, redirect, &cfg)
			},
		}
		b.idps[ic.Name] = bi
	}
	if cfg.WebAuthn != nil {
		wc := *cfg.WebAuthn
		wc.Codec, wc.Now = codec, cfg.Now
		if b.webauthn, err = NewWebAuthn(wc); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Paths of the sign-in endpoints on the proxy's external origin.
const (
	LoginPath     = "/.ztp/login"
	CallbackPath  = "/.ztp/callback"
	LogoutPath    = "/.ztp/logout"
	SignedOutPath = "/.ztp/signed-out"
)

// CookieName is the session cookie's name (chunks add _1, _2…).
func (b *Browser) CookieName() string { return b.codec.cfg.CookieName }

// DefaultIdP is the provider used when a route names none.
func (b *Browser) DefaultIdP() string { return b.first }

// HasIdP reports whether name is a configured sign-in provider.
func (b *Browser) HasIdP(name string) bool { return b.idps[name] != nil }

// Result is an authenticated browser request.
type Result struct {
	Principal identity.Principal
	// SetCookies must be added to the response (a refreshed session).
	SetCookies []*http.Cookie
}

// Authenticate checks the request's session cookie: sealed and intact,
// not expired or idle, bound to the same client certificate if it was
// created over mTLS, not revoked, and its IdP tokens still refreshable.
func (b *Browser) Authenticate(ctx context.Context, r *http.Request, device identity.Device) (Result, error) {
	now := b.cfg.Now()
	sess, err := b.openSession(ctx, r, device, now)
	if err != nil {
		return Result{}, err
	}
	changed := false
	if !sess.IDTokenExpiry.IsZero() && !now.Before(sess.IDTokenExpiry.Add(-b.cfg.RefreshSkew)) {
		refreshed, err := b.refreshSession(ctx, sess)
		if err != nil {
			var lre *LoginRequiredError
			if errors.As(err, &lre) {
				lre.Clear = b.codec.Clear(r)
			}
			return Result{}, err
		}
		sess, changed = refreshed, true
	}
	// Keep the idle clock moving without rewriting the cookie on every
	// request: at most once per tenth of the idle timeout.
	if changed || now.Sub(sess.LastSeen) > b.cfg.IdleTimeout/10 {
		sess.LastSeen = now
		changed = true
	}
	res := Result{Principal: sess.Principal}
	if changed {
		cookies, err := b.codec.Seal(sess, now)
		if err != nil {
			return Result{}, fmt.Errorf("authn: resealing session: %w", err)
		}
		res.SetCookies = cookies
	}
	return res, nil
}

// openSession opens the request's session cookie and checks that the
// session is intact, not idle, on the device it was bound to, and not
// revoked. A *LoginRequiredError (with cookies to clear) means the browser
// must sign in again; any other error is the store's.
func (b *Browser) openSession(ctx context.Context, r *http.Request, device identity.Device, now time.Time) (*Session, error) {
	sess, err := b.codec.Open(r, now)
	if err != nil {
		var clear []*http.Cookie
		if !errors.Is(err, ErrNoSession) {
			clear = b.codec.Clear(r)
		}
		return nil, &LoginRequiredError{Reason: err.Error(), Clear: clear}
	}
	if now.Sub(sess.LastSeen) > b.cfg.IdleTimeout {
		return nil, &LoginRequiredError{Reason: "session idle too long", Clear: b.codec.Clear(r)}
	}
	if sess.DeviceFingerprint != "" && sess.DeviceFingerprint != device.Fingerprint {
		return nil, &LoginRequiredError{Reason: "session belongs to another device", Clear: b.codec.Clear(r)}
	}
	revoked, err := b.cfg.Store.IsRevoked(ctx, sess.ID)
	if err != nil {
		return nil, storeUnavailable("checking session revocation", err)
	}
	if revoked {
		return nil, &LoginRequiredError{Reason: "session was signed out", Clear: b.codec.Clear(r)}
	}
	return sess, nil
}

// IDToken returns the current ID token of a session, kept server-side (for
// AssumeRoleWithWebIdentity and id_token_hint); it is refreshed with the
// session's tokens.
func (b *Browser) IDToken(ctx context.Context, sessionID string) (string, error) {
	rec, err := b.cfg.Store.LoadSession(ctx, sessionID)
	if errors.Is(err, ErrSessionNotFound) || errors.Is(err, ErrSessionRevoked) {
		return "", err
	}
	if err != nil {
		return "", storeUnavailable("loading session", err)
	}
	return rec.IDToken, nil
}
