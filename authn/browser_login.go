package authn

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"ztproxy/identity"
)

// SignInError is a failed sign-in: the user sees Title and Description
// (safe to show) on an error page with a link to try again. Status is 400
// for a bad, expired or replayed callback or a code the IdP refused, 502
// when the IdP answered nonsense, and 503 when the IdP or the session store
// could not be reached.
type SignInError struct {
	Status int
	Code   string
	// Title is the page's headline; empty for the generic one.
	Title       string
	Description string
	Err         error
}

func (e *SignInError) Error() string {
	if e.Err != nil {
		return "sign-in failed: " + e.Code + ": " + e.Err.Error()
	}
	return "sign-in failed: " + e.Code
}

func (e *SignInError) Unwrap() error { return e.Err }

func signInError(status int, code, description string, err error) *SignInError {
	return &SignInError{Status: status, Code: code, Description: description, Err: err}
}

// LoginOptions change a sign-in request; the step-up flows use them.
type LoginOptions struct {
	// StepUp is recorded in the login state and checked at the callback.
	StepUp string
	// Prompt, MaxAge (seconds, -1 = unset) and ACRValues are sent to the
	// IdP.
	Prompt    string
	MaxAge    int
	ACRValues string
}

// LoginRedirect starts a sign-in: it returns the IdP authorization URL
// and the cookies to set (this attempt's sealed state, and deletions of
// stale attempts). returnTo is checked against the configured route hosts;
// anything else falls back to "/".
func (b *Browser) LoginRedirect(ctx context.Context, r *http.Request, idpName, returnTo string, opts LoginOptions) (string, []*http.Cookie, error) {
	if idpName == "" {
		idpName = b.first
	}
	idp := b.idps[idpName]
	if idp == nil {
		return "", nil, signInError(http.StatusBadRequest, "unknown_idp", "That sign-in provider is not configured.", nil)
	}
	client, err := idp.client.get(ctx)
	if err != nil {
		return "", nil, idpSignInError(err)
	}
	now := b.cfg.Now()
	ls, err := NewLoginState(SafeReturnTo(returnTo, b.returnTargets, "/"), idpName, b.loginStamps.next(now))
	if err != nil {
		return "", nil, err
	}
	ls.StepUp = opts.StepUp
	cookies := b.codec.PruneLoginStates(r, now)
	stateCookie, err := b.codec.SealLoginState(ls)
	if err != nil {
		return "", nil, err
	}
	params := []oauth2.AuthCodeOption{
		oidc.Nonce(ls.Nonce),
		oauth2.SetAuthURLParam("code_challenge", ls.PKCEChallenge()),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"),
	}
	for k, v := range idp.cfg.ExtraAuthParams {
		params = append(params, oauth2.SetAuthURLParam(k, v))
	}
	if opts.Prompt != "" {
		params = append(params, oauth2.SetAuthURLParam("prompt", opts.Prompt))
	}
	if opts.MaxAge >= 0 && opts.StepUp != "" {
		params = append(params, oauth2.SetAuthURLParam("max_age", fmt.Sprint(opts.MaxAge)))
	}
	if opts.ACRValues != "" {
		params = append(params, oauth2.SetAuthURLParam("acr_values", opts.ACRValues))
	}
	return client.oauth.AuthCodeURL(ls.State, params...), append(cookies, stateCookie), nil
}

// CallbackResult is a completed sign-in.
type CallbackResult struct {
	ReturnTo  string
	Cookies   []*http.Cookie
	Principal identity.Principal
	// StepUp is the requirement the attempt was started for, if any; the
	// caller checks the new principal satisfies it.
	StepUp string
}

// Callback completes a sign-in at /.ztp/callback. The state is checked
// before the code is redeemed; the iss response parameter, when present,
// must be the IdP's issuer (mix-up defence); the code is redeemed with the
// PKCE verifier; the ID token's signature, audience, nonce and at_hash are
// verified. A new session id is always issued, so a cookie planted before
// sign-in never becomes a session (no fixation).
func (b *Browser) Callback(ctx context.Context, r *http.Request, device identity.Device) (CallbackResult, error) {
	q := r.URL.Query()
	now := b.cfg.Now()
	ls, deletion, err := b.codec.OpenLoginState(r, q.Get("state"), now)
	var res CallbackResult
	if deletion != nil {
		res.Cookies = append(res.Cookies, deletion)
	}
	if err != nil {
		return res, loginStateError(err)
	}
	idp := b.idps[ls.IdP]
	if idp == nil {
		return res, signInError(http.StatusBadRequest, "unknown_idp", "That sign-in provider is no longer configured.", nil)
	}
	if iss := q.Get("iss"); iss != "" && subtle.ConstantTimeCompare([]byte(iss), []byte(idp.cfg.Issuer)) != 1 {
		return res, signInError(http.StatusBadRequest, "issuer_mismatch", "The sign-in response came from an unexpected identity provider.", fmt.Errorf("iss %q", iss))
	}
	if e := q.Get("error"); e != "" {
		return res, authorizationError(sanitizeText(e), sanitizeText(q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" {
		return res, signInError(http.StatusBadRequest, "missing_code", "The sign-in response is incomplete. Start again.", nil)
	}
	client, err := idp.client.get(ctx)
	if err != nil {
		return res, idpSignInError(err)
	}
	tok, idTok, rawID, err := b.redeemCode(ctx, client, code, ls)
	if err != nil {
		return res, err
	}
	p, err := idp.principal(idTok, now, b.cfg.Logger)
	if err != nil {
		return res, signInError(http.StatusBadGateway, "invalid_claims", "The identity provider's ID token has unusable claims.", err)
	}
	if ls.StepUp != "" {
		if ok, why := CheckStepUp(p, ls.StepUp, idp.cfg.StepUpACR, ls.CreatedAt); !ok {
			// No new session: the user keeps the one they had, and sees
			// what was needed instead of another redirect.
			return res, signInError(http.StatusForbidden, "step_up_not_satisfied", "Additional verification did not complete: "+why+".", nil)
		}
	}
	sess, cookies, err := b.startSession(ctx, r, device, p, ls.IdP, tok, idTok, rawID, now)
	if err != nil {
		return res, err
	}
	res.Cookies = append(res.Cookies, cookies...)
	res.ReturnTo, res.StepUp = ls.ReturnTo, ls.StepUp
	p.AuthKind, p.SessionID, p.Expiry = identity.AuthBrowser, sess.ID, sess.ExpiresAt
	res.Principal = p
	return res, nil
}

// loginStateError explains a callback whose sign-in attempt cannot be
// used. A missing attempt is usually one that a newer attempt in the same
// browser replaced (only MaxLoginStates are kept) or that was already
// used; its audit code still tells it apart from an expired one and from
// a forged state.
func loginStateError(err error) *SignInError {
	const title = "Sign-in attempt expired"
	switch {
	case errors.Is(err, ErrExpiredLoginState):
		e := signInError(http.StatusBadRequest, "sign_in_expired",
			fmt.Sprintf("This sign-in attempt took longer than %d minutes and has expired. Start again.", int(LoginStateTTL/time.Minute)), err)
		e.Title = title
		return e
	case errors.Is(err, ErrNoLoginState):
		e := signInError(http.StatusBadRequest, "sign_in_superseded",
			fmt.Sprintf("This sign-in attempt has expired: it was replaced by newer ones (a browser keeps its %d most recent), was already used, or was started in another browser. Start again.", MaxLoginStates), err)
		e.Title = title
		return e
	}
	return signInError(http.StatusBadRequest, "invalid_state", "This sign-in link is invalid. Start again.", err)
}

// redeemCode exchanges the authorization code with the PKCE verifier and
// verifies the ID token: signature, issuer, audience, expiry, nonce and
// at_hash.
func (b *Browser) redeemCode(ctx context.Context, client *oidcClient, code string, ls LoginState) (*oauth2.Token, *oidc.IDToken, string, error) {
	octx := oidc.ClientContext(ctx, b.cfg.HTTPClient)
	tok, err := client.oauth.Exchange(octx, code, oauth2.VerifierOption(ls.PKCEVerifier))
	if err != nil {
		// Issue 22.5: a refusal and an unreachable IdP are told apart.
		return nil, nil, "", idpSignInError(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, nil, "", signInError(http.StatusBadGateway, "no_id_token", "The identity provider returned no ID token.", nil)
	}
	idTok, err := client.verifier.Verify(octx, rawID)
	if err != nil {
		return nil, nil, "", signInError(http.StatusBadGateway, "invalid_id_token", "The identity provider's ID token did not verify.", err)
	}
	if subtle.ConstantTimeCompare([]byte(idTok.Nonce), []byte(ls.Nonce)) != 1 {
		return nil, nil, "", signInError(http.StatusBadRequest, "nonce_mismatch", "The sign-in response does not belong to this browser.", nil)
	}
	if idTok.AccessTokenHash != "" {
		if err := idTok.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, nil, "", signInError(http.StatusBadGateway, "at_hash_mismatch", "The identity provider's tokens do not match.", err)
		}
	}
	return tok, idTok, rawID, nil
}

// startSession stores and seals a brand-new session for p, and ends the
// session the browser had before, if any.
func (b *Browser) startSession(ctx context.Context, r *http.Request, device identity.Device, p identity.Principal, idpName string,
	tok *oauth2.Token, idTok *oidc.IDToken, rawID string, now time.Time) (*Session, []*http.Cookie, error) {
	previous, prevErr := b.codec.Open(r, now)
	sess := &Session{
		ID: NewSessionID(), Principal: p, IssuedAt: now, LastSeen: now,
		ExpiresAt: now.Add(b.cfg.Lifetime), IDTokenExpiry: idTok.Expiry,
	}
	if device.Present {
		sess.DeviceFingerprint = device.Fingerprint
	}
	if tok.RefreshToken == "" {
		// Nothing to refresh with: the session lives to its own expiry.
		sess.IDTokenExpiry = time.Time{}
	}
	rec := SessionRecord{
		ID: sess.ID, UserID: p.ID, IdP: idpName, SID: sessionSID(idTok), RefreshToken: tok.RefreshToken, IDToken: rawID,
		TokenExpiry: idTok.Expiry, ExpiresAt: sess.ExpiresAt,
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err := b.cfg.Store.SaveSession(sctx, rec)
	cancel()
	if err != nil {
		// Issue 22.6: an outage is a clear 503, not a 500.
		e := signInError(http.StatusServiceUnavailable, "session_store_unavailable",
			"You signed in at the identity provider, but your session could not be saved because the session store cannot be reached right now. Try again in a moment.",
			storeUnavailable("saving session", err))
		e.Title = "Sign-in could not be completed"
		return nil, nil, e
	}
	cookies, err := b.codec.Seal(sess, now)
	if err != nil {
		return nil, nil, fmt.Errorf("authn: sealing session: %w", err)
	}
	if prevErr == nil && previous.ID != sess.ID {
		// The browser's earlier session is replaced: end it server-side too.
		b.revokeQuietly(ctx, previous.ID, now)
	}
	return sess, cookies, nil
}

// maxIssuedAtSkew is how far in the future an ID token's iat may be, for
// clock skew between the IdP and the proxy (the leeway go-oidc gives nbf).
const maxIssuedAtSkew = 5 * time.Minute

// principal builds the session principal from a verified ID token. go-oidc
// has checked the signature, iss, aud and exp (a missing exp reads as
// expired); OpenID Connect Core section 2 also requires sub and iat, which
// it leaves to the caller. The nonce is checked by Callback.
func (bi *browserIdP) principal(tok *oidc.IDToken, now time.Time, logger *slog.Logger) (identity.Principal, error) {
	if tok.Subject == "" {
		return identity.Principal{}, errors.New("ID token has no sub")
	}
	if tok.IssuedAt.IsZero() {
		return identity.Principal{}, errors.New("ID token has no iat")
	}
	if tok.IssuedAt.After(now.Add(maxIssuedAtSkew)) {
		return identity.Principal{}, fmt.Errorf("ID token iat %s is in the future", tok.IssuedAt.UTC().Format(time.RFC3339))
	}
	var c bearerClaims
	if err := tok.Claims(&c); err != nil {
		return identity.Principal{}, err
	}
	return buildPrincipal(tok, &c, bi.cfg.Name, bi.cfg.GroupsClaim, bi.cfg.ClaimsToExpose, identity.AuthBrowser, logger)
}

// sanitizeText keeps IdP-supplied text printable and short before it is
// shown or logged.
func sanitizeText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// maxSIDBytes bounds the IdP session id kept with a session.
const maxSIDBytes = 256

// sessionSID is the ID token's "sid" claim (OIDC Back-Channel Logout 1.0
// §2.1), by which the IdP later names the session to end; "" when absent
// or unreasonably long.
func sessionSID(idTok *oidc.IDToken) string {
	var c struct {
		SID string `json:"sid"`
	}
	if idTok.Claims(&c) != nil || len(c.SID) > maxSIDBytes {
		return ""
	}
	return c.SID
}
