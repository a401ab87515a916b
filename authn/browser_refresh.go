package authn

import (
	"context"
	"errors"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"ztproxy/identity"
)

// refreshRetryAfter is how long a session keeps working, without another
// refresh attempt, after the IdP could not be reached.
const refreshRetryAfter = time.Minute

// refreshSession renews the IdP tokens behind a session with its
// server-side refresh token. invalid_grant (the IdP ended the grant) ends
// the session; a network or IdP outage keeps it until its own expiry.
// Concurrent requests of one session share one refresh, and a request
// still carrying the pre-refresh cookie adopts the newer tokens from the
// store instead of spending the (rotated) refresh token again.
func (b *Browser) refreshSession(ctx context.Context, sess *Session) (*Session, error) {
	v, err, _ := b.refresh.Do(sess.ID, func() (any, error) {
		return b.refreshOnce(context.WithoutCancel(ctx), sess)
	})
	if err != nil {
		return nil, err
	}
	refreshed := *v.(*Session)
	refreshed.LastSeen = sess.LastSeen
	return &refreshed, nil
}

func (b *Browser) refreshOnce(ctx context.Context, sess *Session) (*Session, error) {
	now := b.cfg.Now()
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	rec, err := b.cfg.Store.LoadSession(sctx, sess.ID)
	cancel()
	switch {
	case errors.Is(err, ErrSessionRevoked), errors.Is(err, ErrSessionNotFound):
		return nil, &LoginRequiredError{Reason: "session ended"}
	case err != nil:
		// Issue 22.6: without the stored grant nothing can be checked;
		// fail closed (503) rather than extend the session on a guess.
		return nil, storeUnavailable("loading session for refresh", err)
	}
	idp := b.idps[rec.IdP]
	if idp == nil {
		return nil, &LoginRequiredError{Reason: "identity provider no longer configured"}
	}
	client, err := idp.client.get(ctx)
	if err != nil {
		return b.keepUntilRetry(sess, now, classifyIdPError(err).code, err), nil
	}
	octx := oidc.ClientContext(ctx, b.cfg.HTTPClient)
	updated := *sess
	if rec.TokenExpiry.After(sess.IDTokenExpiry) && rec.IDToken != "" {
		// Another request (or replica) already refreshed: adopt its tokens.
		if idTok, err := client.verifier.Verify(octx, rec.IDToken); err == nil {
			if p, err := idp.principal(idTok, now, b.cfg.Logger); err == nil {
				mergeRefreshedPrincipal(&updated, p)
			}
			updated.IDTokenExpiry = rec.TokenExpiry
			return &updated, nil
		}
	}
	if rec.RefreshToken == "" {
		updated.IDTokenExpiry = time.Time{}
		return &updated, nil
	}
	tok, err := client.oauth.TokenSource(octx, &oauth2.Token{RefreshToken: rec.RefreshToken, Expiry: now.Add(-time.Second)}).Token()
	if err != nil {
		// Issue 22.5: a refusal (invalid_grant, invalid_client, …) ends
		// the session; an unreachable or hung IdP keeps it until retry.
		f := classifyIdPError(err)
		if f.code != CodeIdPRefused {
			return b.keepUntilRetry(sess, now, f.code, err), nil
		}
		b.revokeQuietly(ctx, sess.ID, now)
		b.cfg.Logger.Info("authn: refresh refused by the identity provider; session ended", "idp", rec.IdP,
			"session", shortID(sess.ID), "code", f.code, "oauth_error", f.oauthError)
		return nil, &LoginRequiredError{Reason: "the identity provider ended the session", Code: "refresh_refused"}
	}
	return b.keepRefreshed(ctx, &updated, idp, client, rec, tok, now)
}

// keepRefreshed checks the refreshed ID token (same user), stores the new
// tokens and returns the updated session.
func (b *Browser) keepRefreshed(ctx context.Context, updated *Session, idp *browserIdP, client *oidcClient,
	rec SessionRecord, tok *oauth2.Token, now time.Time) (*Session, error) {
	expiry := tok.Expiry
	rawID, _ := tok.Extra("id_token").(string)
	if rawID != "" {
		idTok, err := client.verifier.Verify(oidc.ClientContext(ctx, b.cfg.HTTPClient), rawID)
		if err != nil {
			return b.keepUntilRetry(updated, now, "invalid_id_token", err), nil
		}
		p, err := idp.principal(idTok, now, b.cfg.Logger)
		if err != nil {
			return b.keepUntilRetry(updated, now, "invalid_claims", err), nil
		}
		if p.ID != updated.Principal.ID {
			b.revokeQuietly(ctx, updated.ID, now)
			return nil, &LoginRequiredError{Reason: "refreshed identity does not match the session"}
		}
		mergeRefreshedPrincipal(updated, p)
		expiry = idTok.Expiry
	} else {
		rawID = rec.IDToken
	}
	refresh := tok.RefreshToken
	if refresh == "" {
		refresh = rec.RefreshToken
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err := b.cfg.Store.UpdateSessionTokens(sctx, updated.ID, refresh, rawID, expiry)
	cancel()
	if err != nil {
		if errors.Is(err, ErrSessionRevoked) || errors.Is(err, ErrSessionNotFound) {
			return nil, &LoginRequiredError{Reason: "session ended"}
		}
		// The new tokens could not be kept: fail closed. With refresh
		// token rotation the IdP may refuse the old one next time, and
		// the user signs in again.
		return nil, storeUnavailable("storing refreshed tokens", err)
	}
	updated.IDTokenExpiry = expiry
	b.cfg.Logger.Info("authn: session tokens refreshed", "idp", rec.IdP, "session", shortID(updated.ID))
	return updated, nil
}

// mergeRefreshedPrincipal takes the attributes an IdP may change (email,
// name, username, groups) from a refreshed token and keeps how and when
// the user authenticated.
func mergeRefreshedPrincipal(s *Session, p identity.Principal) {
	s.Principal.Email, s.Principal.EmailVerified, s.Principal.Name, s.Principal.Groups = p.Email, p.EmailVerified, p.Name, p.Groups
	s.Principal.Username = p.Username
}

// keepUntilRetry keeps a session working when its tokens could not be
// refreshed for a reason other than the IdP refusing them; code says why
// (idp_unreachable, idp_timeout, …).
func (b *Browser) keepUntilRetry(sess *Session, now time.Time, code string, err error) *Session {
	b.cfg.Logger.Warn("authn: token refresh failed; keeping the session", "session", shortID(sess.ID), "code", code, "error", err)
	kept := *sess
	kept.IDTokenExpiry = now.Add(refreshRetryAfter + b.cfg.RefreshSkew)
	return &kept
}

// revokeQuietly ends a session that must not continue. The store refuses
// it on this replica even when the shared write fails (and retries that
// write), so a failure is only logged.
func (b *Browser) revokeQuietly(ctx context.Context, id string, now time.Time) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := b.cfg.Store.RevokeSession(sctx, id, now); err != nil && !errors.Is(err, ErrSessionNotFound) {
		b.cfg.Logger.Warn("authn: revoking a session failed", "session", shortID(id), "error", err)
	}
}

// shortID is a loggable prefix of a session id.
func shortID(id string) string {
	if len(id) > 6 {
		return id[:6]
	}
	return id
}
