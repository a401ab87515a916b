// Package authn authenticates requests and turns them into an
// identity.Principal: bearer JWTs from Amazon Cognito or any OIDC issuer
// (BearerVerifier) and, in the browser files, OIDC login sessions.
package authn

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"ztproxy/identity"
)

// Bearer error codes from RFC 6750 section 3.1.
const (
	CodeInvalidToken   = "invalid_token"
	CodeInvalidRequest = "invalid_request"
)

// maxBearerTokenBytes bounds the size of a token this package will parse.
// Real IdP tokens are a few KiB; anything far larger is an attack on the
// parser or the hash.
const maxBearerTokenBytes = 16 << 10

// BearerError is the error Verify returns for a token it does not accept.
// Code is an RFC 6750 error code and Description a short text that is safe
// to send to the client in WWW-Authenticate; Err is the underlying cause
// for logs. None of them contains the token.
type BearerError struct {
	Code        string
	Description string
	Err         error
}

// Error returns the code, the description and the cause.
func (e *BearerError) Error() string {
	if e.Err == nil {
		return "authn: bearer " + e.Code + ": " + e.Description
	}
	return "authn: bearer " + e.Code + ": " + e.Description + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *BearerError) Unwrap() error { return e.Err }

func invalidToken(description string, cause error) *BearerError {
	return &BearerError{Code: CodeInvalidToken, Description: description, Err: cause}
}

// BearerConfig configures a BearerVerifier.
type BearerConfig struct {
	// IdPs are the identity providers whose tokens are accepted. Each
	// issuer may appear once; list every accepted client in its Audiences.
	IdPs []IdPConfig
	// HTTPClient fetches discovery documents and JWKS. It is hardened
	// with NewIdPHTTPClient (no redirects, bounded bodies, https only for
	// non-loopback hosts, a 10 s timeout unless it has its own).
	HTTPClient *http.Client
	// KeySetEvents receive key set fetches and refused refetches, for
	// metrics.
	KeySetEvents KeySetEvents
	// UserinfoEvents, when set, receives the result of every userinfo
	// request, for metrics.
	UserinfoEvents UserinfoEvents
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// CacheSize is the number of verified tokens kept, DefaultTokenCacheSize
	// by default.
	CacheSize int
	// Logger receives discovery and verification events; slog.Default()
	// by default. Tokens are never logged, only a short hash prefix.
	Logger *slog.Logger
}

// CheckAndSetDefaults validates c and fills in defaults, reporting every
// problem at once with the IdP's index. The IdPs slice is copied first so
// the caller's configuration is not modified through it.
func (c *BearerConfig) CheckAndSetDefaults() error {
	var errs []error
	if len(c.IdPs) == 0 {
		errs = append(errs, errors.New("idps: at least one identity provider is required"))
	}
	c.IdPs = append([]IdPConfig(nil), c.IdPs...)
	names := make(map[string]int)
	issuers := make(map[string]int)
	for i := range c.IdPs {
		idp := &c.IdPs[i]
		if err := idp.CheckAndSetDefaults(); err != nil {
			errs = append(errs, fmt.Errorf("idps[%d]: %w", i, err))
		}
		if j, dup := names[idp.Name]; dup && idp.Name != "" {
			errs = append(errs, fmt.Errorf("idps[%d].name: %q already used by idps[%d]", i, idp.Name, j))
		}
		if j, dup := issuers[idp.Issuer]; dup && idp.Issuer != "" {
			errs = append(errs, fmt.Errorf("idps[%d].issuer: %q already configured by idps[%d]; list all accepted audiences in one entry", i, idp.Issuer, j))
		}
		names[idp.Name], issuers[idp.Issuer] = i, i
	}
	if c.CacheSize < 0 {
		errs = append(errs, errors.New("cache_size: must not be negative"))
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultTokenCacheSize
	}
	// Every IdP call goes through the hardened client; the caller's
	// client only lends its transport and timeout and is not modified.
	c.HTTPClient = NewIdPHTTPClient(c.HTTPClient)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

// BearerVerifier verifies bearer JWTs against the configured IdPs. It is
// safe for concurrent use.
type BearerVerifier struct {
	byIssuer map[string]*idpVerifier
	cache    *tokenCache
	now      func() time.Time
	logger   *slog.Logger
}

// NewBearerVerifier checks cfg and returns a verifier. It does no network
// I/O: each IdP's discovery runs on the first token for it and is retried
// on later requests if it fails, so the proxy starts while an IdP is down.
func NewBearerVerifier(cfg BearerConfig) (*BearerVerifier, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, fmt.Errorf("authn: bearer config: %w", err)
	}
	v := &BearerVerifier{
		byIssuer: make(map[string]*idpVerifier, len(cfg.IdPs)),
		cache:    newTokenCache(cfg.CacheSize),
		now:      cfg.Now,
		logger:   cfg.Logger,
	}
	for _, idp := range cfg.IdPs {
		p, err := newIdPVerifier(idp, &cfg)
		if err != nil {
			return nil, fmt.Errorf("authn: bearer config: idp %q: %w", idp.Name, err)
		}
		v.byIssuer[idp.Issuer] = p
	}
	return v, nil
}

// Verify checks a raw JWT and returns the principal it proves. Errors for
// unacceptable tokens are *BearerError; if ctx ends first its error is
// returned instead, so a client that went away is not counted as a bad
// token.
//
// Verified tokens are cached by their SHA-256 until their exp (at most
// five minutes, and no longer than their userinfo lookup if the IdP has
// enrichment), and only while the key that verified them is still
// published and the IdP's key set is fresh (see KeyRefresh). The returned
// Principal is a copy, but its Groups, Scopes, AMR and Claims are shared with the cache and with every other caller presenting
// the same token: callers MUST treat them as read-only.
func (v *BearerVerifier) Verify(ctx context.Context, raw string) (identity.Principal, error) {
	if raw == "" {
		return identity.Principal{}, &BearerError{Code: CodeInvalidRequest, Description: "missing bearer token"}
	}
	if len(raw) > maxBearerTokenBytes {
		return identity.Principal{}, invalidToken("token too large", nil)
	}
	key := hashToken(raw)
	now := v.now()
	if e := v.cache.get(&key); e != nil {
		if now.Before(e.until) && e.key.stillTrusted(now.UnixNano()) {
			return e.principal, nil
		}
		v.cache.remove(&key, e)
		if !now.Before(e.principal.Expiry) {
			return identity.Principal{}, invalidToken("token is expired", &oidc.TokenExpiredError{Expiry: e.principal.Expiry})
		}
		// The cache cap passed, the key that verified the token was
		// withdrawn, or the key set must be refreshed first: verify the
		// token again below.
	}
	p, verifiedBy, enrichedUntil, err := v.verifySlow(ctx, raw)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return identity.Principal{}, fmt.Errorf("authn: bearer verification interrupted: %w", ctxErr)
		}
		v.logger.Debug("authn: bearer token rejected", "token_sha256", hex.EncodeToString(key[:4]), "error", err)
		return identity.Principal{}, err
	}
	until := now.Add(maxTokenCacheTTL)
	if p.Expiry.Before(until) {
		until = p.Expiry
	}
	if !enrichedUntil.IsZero() && enrichedUntil.Before(until) {
		until = enrichedUntil
	}
	v.cache.put(&key, &cachedToken{principal: p, until: until, key: verifiedBy}, now)
	return p, nil
}

// verifySlow does the full check: pick the IdP by the unverified iss, then
// let go-oidc check signature (with the IdP's key set), alg, iss, exp and
// nbf, then check the rest, and complete the principal with the IdP's
// userinfo if configured. It returns the key that verified the token and,
// for an enriched principal, when its userinfo lookup ends.
func (v *BearerVerifier) verifySlow(ctx context.Context, raw string) (identity.Principal, *trustedKey, time.Time, *BearerError) {
	p, key, bk, idp, err := v.verifySignature(ctx, raw)
	if err != nil || idp.userinfo == nil {
		return p, key, time.Time{}, err
	}
	endpoint := bk.userinfoURL
	if idp.cfg.Userinfo.URL != "" {
		endpoint = idp.cfg.Userinfo.URL
	}
	until, err := idp.userinfo.enrich(ctx, raw, endpoint, &p)
	if err != nil {
		return identity.Principal{}, nil, time.Time{}, err
	}
	return p, key, until, nil
}

// verifySignature verifies raw with its IdP's keys and claim rules and
// builds its principal.
func (v *BearerVerifier) verifySignature(ctx context.Context, raw string) (identity.Principal, *trustedKey, *bearerKeys, *idpVerifier, *BearerError) {
	fail := func(description string, err error) (identity.Principal, *trustedKey, *bearerKeys, *idpVerifier, *BearerError) {
		return identity.Principal{}, nil, nil, nil, invalidToken(description, err)
	}
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return fail("malformed token", err)
	}
	// The unverified iss only selects a verifier; that verifier checks the
	// signature with its own keys and compares iss again.
	idp, ok := v.byIssuer[iss]
	if !ok {
		return fail("untrusted issuer", fmt.Errorf("issuer %q is not configured", iss))
	}
	bk, err := idp.get(ctx)
	if err != nil {
		return fail("identity provider unavailable", err)
	}
	var used keyCapture
	tok, err := bk.verifier.Verify(withKeyCapture(ctx, &used), raw)
	if err != nil {
		if errors.Is(used.err, ErrIdPUnavailable) {
			// go-oidc flattens the key set's error; report the outage.
			return fail("identity provider unavailable", used.err)
		}
		if expired := new(*oidc.TokenExpiredError); errors.As(err, expired) {
			return fail("token is expired", err)
		}
		return fail("token is invalid", err)
	}
	if used.key == nil {
		return fail("token is invalid", errors.New("no verification key recorded"))
	}
	p, err := idp.principalFromToken(tok)
	if err != nil {
		return fail("token is not accepted", err)
	}
	return p, used.key, bk, idp, nil
}

// unverifiedIssuer reads iss from a compact JWS without checking anything.
// The result is only a hint for choosing a verifier.
func unverifiedIssuer(raw string) (string, error) {
	header, rest, ok := strings.Cut(raw, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || header == "" || payload == "" || strings.Contains(sig, ".") {
		return "", errors.New("not a compact JWS (three dot-separated parts)")
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(body, &claims); err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	if claims.Issuer == "" {
		return "", errors.New("no iss claim")
	}
	return claims.Issuer, nil
}

// ParseAuthorization extracts the token from an Authorization header value
// of the form "Bearer <token>". The scheme is case-insensitive; exactly one
// space separates it from the token, which must be a non-empty RFC 6750
// b64token (letters, digits, "-._~+/", then optional "=" padding).
func ParseAuthorization(h string) (token string, ok bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	token = h[len(scheme):]
	if !isB64Token(token) {
		return "", false
	}
	return token, true
}

func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
