package authn

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// idpRevokeTimeout bounds the RFC 7009 call at sign-out: the user waits
// for it, and a slow IdP must not hold the sign-out.
const idpRevokeTimeout = 3 * time.Second

// revokeAtIdP revokes the session's refresh token at the IdP (RFC 7009)
// when its discovery document advertises revocation_endpoint (issue 17),
// so a copy of the token cannot outlive the sign-out. It goes through
// the hardened IdP client (no redirects, bounded bodies, a timeout) and
// never fails the sign-out: the session is already revoked here.
func (b *Browser) revokeAtIdP(ctx context.Context, idp *browserIdP, refreshToken string) {
	client, err := idp.client.get(ctx)
	if err != nil || client.revocation == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idpRevokeTimeout)
	defer cancel()
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, client.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: client_secret_basic, with both parts form-encoded.
	req.SetBasicAuth(url.QueryEscape(idp.cfg.ClientID), url.QueryEscape(idp.cfg.ClientSecret))
	resp, err := b.cfg.HTTPClient.Do(req)
	if err != nil {
		b.cfg.Logger.Warn("authn: token revocation at the identity provider failed", "idp", idp.cfg.Name, "err", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.cfg.Logger.Warn("authn: the identity provider refused the token revocation", "idp", idp.cfg.Name, "status", resp.StatusCode)
		return
	}
	b.cfg.Logger.Info("authn: refresh token revoked at the identity provider", "idp", idp.cfg.Name)
}
