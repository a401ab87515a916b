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
	rec, err := b.cfg.Store.LoadSession(ctx, sess.ID)
	switch {
	case errors.Is(err, ErrSessionRevoked), errors.Is(err, ErrSessionNotFound):
		return nil, &LoginRequiredError{Reason: "session ended"}
	case err != nil:
		return b.keepUntilRetry(sess, now, err), nil
	}
	idp := b.idps[rec.IdP]
	if idp == nil {
		return nil, &LoginRequiredError{Reason: "identity provider no longer configured"}
	}
	client, err := idp.client.get(ctx)
	if err != nil {
		return b.keepUntilRetry(sess, now, err), nil
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
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			_ = b.cfg.Store.RevokeSession(ctx, sess.ID, now)
			b.cfg.Logger.Info("authn: refresh token refused; session ended", "idp", rec.IdP, "session", shortID(sess.ID))
			return nil, &LoginRequiredError{Reason: "the identity provider ended the session"}
		}
		return b.keepUntilRetry(sess, now, err), nil
	}
	expiry := tok.Expiry
	rawID, _ := tok.Extra("id_token").(string)
	if rawID != "" {
		idTok, err := client.verifier.Verify(octx, rawID)
		if err != nil {
			return b.keepUntilRetry(sess, now, err), nil
		}
		p, err := idp.principal(idTok, now, b.cfg.Logger)
		if err != nil {
			return b.keepUntilRetry(sess, now, err), nil
		}
		if p.ID != sess.Principal.ID {
			_ = b.cfg.Store.RevokeSession(ctx, sess.ID, now)
			return nil, &LoginRequiredError{Reason: "refreshed identity does not match the session"}
		}
		mergeRefreshedPrincipal(&updated, p)
		expiry = idTok.Expiry
	} else {
		rawID = rec.IDToken
	}
	refresh := tok.RefreshToken
	if refresh == "" {
		refresh = rec.RefreshToken
	}
	if err := b.cfg.Store.UpdateSessionTokens(ctx, sess.ID, refresh, rawID, expiry); err != nil {
		if errors.Is(err, ErrSessionRevoked) || errors.Is(err, ErrSessionNotFound) {
			return nil, &LoginRequiredError{Reason: "session ended"}
		}
		return b.keepUntilRetry(sess, now, err), nil
	}
	updated.IDTokenExpiry = expiry
	b.cfg.Logger.Info("authn: session tokens refreshed", "idp", rec.IdP, "session", shortID(sess.ID))
	return &updated, nil
}

// mergeRefreshedPrincipal takes the attributes an IdP may change (email,
// name, groups) from a refreshed token and keeps how and when the user
// authenticated.
func mergeRefreshedPrincipal(s *Session, p identity.Principal) {
	s.Principal.Email, s.Principal.EmailVerified, s.Principal.Name, s.Principal.Groups = p.Email, p.EmailVerified, p.Name, p.Groups
}

// keepUntilRetry keeps a session working when its tokens could not be
// refreshed for a reason other than the IdP refusing them.
func (b *Browser) keepUntilRetry(sess *Session, now time.Time, err error) *Session {
	b.cfg.Logger.Warn("authn: token refresh failed; keeping the session", "session", shortID(sess.ID), "error", err)
	kept := *sess
	kept.IDTokenExpiry = now.Add(refreshRetryAfter + b.cfg.RefreshSkew)
	return &kept
}

// shortID is a loggable prefix of a session id.
func shortID(id string) string {
	if len(id) > 6 {
		return id[:6]
	}
	return id
}
