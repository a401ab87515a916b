package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"ztproxy/identity"
)

// ErrReauthRequired means adding or removing a security key needs a
// sign-in more recent than WebAuthnConfig.EnrollMaxAge: send the user
// through the IdP again (step-up requirement StepUpReauth).
var ErrReauthRequired = errors.New("authn: a recent sign-in is required to change security keys")

// ErrKeyVerificationRequired means the user already has security keys:
// adding or removing one needs a verification with one of them within
// WebAuthnConfig.EnrollMaxAge, so that a stolen password cannot replace
// the user's keys. A user who lost every key needs an operator
// (ztproxy keys remove).
var ErrKeyVerificationRequired = errors.New("authn: verify with an existing security key to change security keys")

// ErrWebAuthnDisabled means the proxy was configured without WebAuthn.
var ErrWebAuthnDisabled = errors.New("authn: webauthn is not enabled")

// WebAuthnEnabled reports whether security keys can be used for step-up.
func (b *Browser) WebAuthnEnabled() bool { return b.webauthn != nil }

// SecurityKeys lists the user's registered security keys.
func (b *Browser) SecurityKeys(ctx context.Context, p identity.Principal) ([]WebAuthnCredential, error) {
	if b.webauthn == nil {
		return nil, ErrWebAuthnDisabled
	}
	if err := checkWebAuthnPrincipal(p); err != nil {
		return nil, err
	}
	return b.webauthn.cfg.Store.ListCredentials(ctx, p.ID)
}

// CheckKeyChange reports whether p may add or remove security keys now:
// nil, ErrReauthRequired (no keys yet and no sign-in at the IdP within
// EnrollMaxAge) or ErrKeyVerificationRequired (keys exist and none was
// used within EnrollMaxAge). The first key therefore needs a fresh IdP
// sign-in, and later changes need a key the user already has.
func (b *Browser) CheckKeyChange(ctx context.Context, p identity.Principal) error {
	keys, err := b.SecurityKeys(ctx, p)
	if err != nil {
		return err
	}
	fresh := !p.AuthTime.IsZero() && b.cfg.Now().Sub(p.AuthTime) <= b.webauthn.cfg.EnrollMaxAge
	switch {
	case len(keys) == 0 && !fresh:
		return ErrReauthRequired
	case len(keys) > 0 && (!fresh || !slices.Contains(p.AMR, "webauthn")):
		return ErrKeyVerificationRequired
	}
	return nil
}

// BeginEnroll starts registering a new security key for a recently
// signed-in user; see WebAuthn.BeginRegistration.
func (b *Browser) BeginEnroll(ctx context.Context, p identity.Principal) ([]byte, *http.Cookie, error) {
	if b.webauthn == nil {
		return nil, nil, ErrWebAuthnDisabled
	}
	if err := b.CheckKeyChange(ctx, p); err != nil {
		return nil, nil, err
	}
	return b.webauthn.BeginRegistration(ctx, p)
}

// FinishEnroll verifies and stores the new key; the returned cookies clear
// the ceremony state whatever the outcome.
func (b *Browser) FinishEnroll(ctx context.Context, p identity.Principal, r *http.Request) (WebAuthnCredential, []*http.Cookie, error) {
	if b.webauthn == nil {
		return WebAuthnCredential{}, nil, ErrWebAuthnDisabled
	}
	clear := b.webauthn.ClearWebAuthnState()
	if err := b.CheckKeyChange(ctx, p); err != nil {
		return WebAuthnCredential{}, clear, err
	}
	cred, err := b.webauthn.FinishRegistration(ctx, p, r)
	return cred, clear, err
}

// RemoveSecurityKey deletes one of a recently signed-in user's keys.
func (b *Browser) RemoveSecurityKey(ctx context.Context, p identity.Principal, id []byte) error {
	if b.webauthn == nil {
		return ErrWebAuthnDisabled
	}
	if err := b.CheckKeyChange(ctx, p); err != nil {
		return err
	}
	return b.webauthn.cfg.Store.DeleteCredential(ctx, p.ID, id)
}

// BeginWebAuthnStepUp starts a step-up with one of the user's keys;
// ErrWebAuthnNoCredentials when they have none yet.
func (b *Browser) BeginWebAuthnStepUp(ctx context.Context, p identity.Principal) ([]byte, *http.Cookie, error) {
	if b.webauthn == nil {
		return nil, nil, ErrWebAuthnDisabled
	}
	return b.webauthn.BeginLogin(ctx, p)
}

// WebAuthnStepUpResult is a session upgraded by a security key.
type WebAuthnStepUpResult struct {
	Principal identity.Principal
	// Cookies carry the new session and clear the ceremony state; set
	// them whatever the outcome.
	Cookies []*http.Cookie
	// Key is the credential that was used, with its new sign count.
	Key WebAuthnCredential
}

// FinishWebAuthnStepUp verifies the assertion in r against the request's
// session and, when it verifies, upgrades the session: amr gains hwk and
// webauthn (so mfa is true) and the authentication time is now. The
// upgraded session gets a new id and the old one is revoked, so a copy of
// the earlier cookie never carries the stronger authentication.
func (b *Browser) FinishWebAuthnStepUp(ctx context.Context, r *http.Request, device identity.Device) (WebAuthnStepUpResult, error) {
	if b.webauthn == nil {
		return WebAuthnStepUpResult{}, ErrWebAuthnDisabled
	}
	res := WebAuthnStepUpResult{Cookies: b.webauthn.ClearWebAuthnState()}
	now := b.cfg.Now()
	sess, err := b.openSession(ctx, r, device, now)
	if err != nil {
		return res, err
	}
	key, err := b.webauthn.FinishLogin(ctx, sess.Principal, r)
	if err != nil {
		return res, err
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	rec, err := b.cfg.Store.LoadSession(sctx, sess.ID)
	if err != nil {
		if errors.Is(err, ErrSessionNotFound) || errors.Is(err, ErrSessionRevoked) {
			return res, &LoginRequiredError{Reason: "session was signed out", Clear: b.codec.Clear(r)}
		}
		return res, storeUnavailable("loading session", err)
	}
	up := UpgradeSession(sess, now)
	up.ID, up.LastSeen = NewSessionID(), now
	rec.ID = up.ID
	if err := b.cfg.Store.SaveSession(sctx, rec); err != nil {
		return res, storeUnavailable("saving upgraded session", err)
	}
	cookies, err := b.codec.Seal(up, now)
	if err != nil {
		return res, fmt.Errorf("authn: sealing upgraded session: %w", err)
	}
	// The replaced session is refused here at once even if the store
	// write has to be retried.
	b.revokeQuietly(ctx, sess.ID, now)
	res.Cookies = append(res.Cookies, cookies...)
	up.Principal.AuthKind, up.Principal.SessionID, up.Principal.Expiry = identity.AuthBrowser, up.ID, up.ExpiresAt
	res.Principal, res.Key = up.Principal, key
	return res, nil
}

// ReturnTo is raw when it is a safe place to send the browser after a
// step-up (relative, or on the proxy's or a route's host), else "/".
func (b *Browser) ReturnTo(raw string) string {
	return SafeReturnTo(raw, b.returnTargets, "/")
}
