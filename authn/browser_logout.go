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
}

// Logout ends the request's session: it is revoked server-side (so a
// replayed cookie is refused by every replica once their revocation caches
// expire), its cookies are cleared, and the browser is sent to the IdP's
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
	rec, loadErr := b.cfg.Store.LoadSession(ctx, sess.ID)
	if err := b.cfg.Store.RevokeSession(ctx, sess.ID, now); err != nil && !errors.Is(err, ErrSessionNotFound) {
		// The cookie is cleared either way, but the session could still be
		// replayed: report it so the user is told.
		return res, err
	}
	idp := b.idps[sess.Principal.IdP]
	if idp == nil {
		return res, nil
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
