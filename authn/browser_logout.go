package authn

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// LogoutResult says where to send the browser after sign-out and which
// cookies to clear.
type LogoutResult struct {
	Location string
	Cookies  []*http.Cookie
	// Pending means the session is refused on this replica but the shared
	// store has not recorded the revocation yet (it is retried in the
	// background): the user must be told that other replicas follow later.
	Pending bool
}

// Logout ends the request's session: it is revoked server-side (so a
// replayed cookie is refused by every replica once their revocation caches
// expire; at once on this one, even while the shared store is down, see
// LogoutResult.Pending), its cookies are cleared, and the browser is sent to the IdP's
// sign-out (RP-initiated logout with id_token_hint, or the configured
// logout_url), which returns to /.ztp/signed-out.
func (b *Browser) Logout(ctx context.Context, r *http.Request) (LogoutResult, error) {
	now := b.cfg.Now()
	res := LogoutResult{Cookies: b.codec.Clear(r)}
	signedOut := strings.TrimSuffix(b.cfg.ExternalURL.String(), "/") + SignedOutPath
	res.Location = signedOut
	sess, err := b.codec.Open(r, now)
	if err != nil {
		return res, nil // nothing to revoke; still clear whatever is there
	}
	// One deadline for both store calls: a hung store costs the user
	// seconds, and the revocation then proceeds as pending.
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	rec, loadErr := b.cfg.Store.LoadSession(sctx, sess.ID)
	if err := b.cfg.Store.RevokeSession(sctx, sess.ID, now); err != nil && !errors.Is(err, ErrSessionNotFound) {
		if !errors.Is(err, ErrRevocationPending) {
			// Not even this replica could record it: report it so the
			// user is told and can try again.
			return res, err
		}
		b.cfg.Logger.Warn("authn: sign-out recorded on this replica only; the store write is retried", "session", shortID(sess.ID), "error", err)
		res.Pending = true
	}
	idp := b.idps[sess.Principal.IdP]
	if idp == nil {
		return res, nil
	}
	if loadErr == nil && rec.RefreshToken != "" {
		// Issue 17: a copy of the refresh token must not outlive the
		// sign-out (RFC 7009, when the IdP advertises it).
		b.revokeAtIdP(ctx, idp, rec.RefreshToken)
	}
	if idp.cfg.LogoutURL != "" {
		res.Location = idp.cfg.LogoutURL
		return res, nil
	}
	client, err := idp.client.get(ctx)
	if err != nil || client.endSession == "" {
		return res, nil
	}
	q := url.Values{"post_logout_redirect_uri": {signedOut}, "client_id": {idp.cfg.ClientID}}
	if loadErr == nil && rec.IDToken != "" {
		q.Set("id_token_hint", rec.IDToken)
	}
	sep := "?"
	if strings.Contains(client.endSession, "?") {
		sep = "&"
	}
	res.Location = client.endSession + sep + q.Encode()
	return res, nil
}
