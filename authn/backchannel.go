package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"ztproxy/identity"
)

// OpenID Connect Back-Channel Logout 1.0: the IdP POSTs a signed logout
// token naming an IdP session (sid) or a user (sub), and every matching
// session ends on every replica (issue 17).

// BackchannelLogoutPath is the receiver the IdP is registered with
// (backchannel_logout_uri).
const BackchannelLogoutPath = "/.ztp/backchannel-logout"

// BackchannelEvent is the events member a logout token must carry.
const BackchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// MaxLogoutTokenBytes bounds a logout token (a signed JWT of a handful of
// claims is well under 4 KiB).
const MaxLogoutTokenBytes = 8 << 10

// Timing rules of logout tokens: iat within logoutTokenMaxAge in the
// past (and not in the future beyond logoutTokenSkew); the jti is
// remembered that long, so a replay is refused by every replica.
const (
	logoutTokenMaxAge = 10 * time.Minute
	logoutTokenSkew   = time.Minute
)

// SessionRevoker is what back-channel logout needs of the session store
// beyond SessionStore: the session indexes and the one-time keys. The
// implementation refuses the sessions on this replica at once and tells
// the others.
type SessionRevoker interface {
	RevokeIdPSessions(ctx context.Context, idp, sid string, at time.Time) ([]string, error)
	RevokeUserSessions(ctx context.Context, userID string, at time.Time) ([]string, error)
	ClaimOnce(ctx context.Context, key string, until time.Time) error
}

// BackchannelError is a logout token refused (400, per the spec) with an
// OAuth-style error code and a description safe to return to the IdP.
type BackchannelError struct {
	Code, Description string
	Err               error
}

func (e *BackchannelError) Error() string {
	if e.Err != nil {
		return "back-channel logout: " + e.Description + ": " + e.Err.Error()
	}
	return "back-channel logout: " + e.Description
}

func (e *BackchannelError) Unwrap() error { return e.Err }

func badLogoutToken(desc string, err error) error {
	return &BackchannelError{Code: "invalid_request", Description: desc, Err: err}
}

// BackchannelResult says what a logout token ended.
type BackchannelResult struct {
	IdP, Subject, SID string
	Sessions          int
}

// logoutClaims are the claims a logout token is checked for.
type logoutClaims struct {
	Issuer  string                     `json:"iss"`
	Subject string                     `json:"sub"`
	SID     string                     `json:"sid"`
	JTI     string                     `json:"jti"`
	IAT     *json.Number               `json:"iat"`
	EXP     *json.Number               `json:"exp"`
	Events  map[string]json.RawMessage `json:"events"`
	Nonce   *json.RawMessage           `json:"nonce"`
}

// BackchannelLogout validates a logout token (OIDC Back-Channel Logout
// 1.0 §2.6: signature with the IdP's keys, iss, aud, iat, jti not seen
// before, the back-channel event, no nonce, sid and/or sub) and revokes
// every session it names. A refused token is a *BackchannelError; any
// other error is the store's (the logout failed).
func (b *Browser) BackchannelLogout(ctx context.Context, raw string) (BackchannelResult, error) {
	revoker, ok := b.cfg.Store.(SessionRevoker)
	if !ok {
		return BackchannelResult{}, errors.New("back-channel logout: the session store cannot find sessions by IdP session")
	}
	if len(raw) == 0 || len(raw) > MaxLogoutTokenBytes {
		return BackchannelResult{}, badLogoutToken("logout_token is missing or too large", nil)
	}
	if err := checkLogoutTyp(raw); err != nil {
		return BackchannelResult{}, err
	}
	idpName, claims, err := b.verifyLogoutToken(ctx, raw)
	if err != nil {
		return BackchannelResult{}, err
	}
	now := b.cfg.Now()
	iat, err := checkLogoutClaims(claims, now)
	if err != nil {
		return BackchannelResult{}, err
	}
	res := BackchannelResult{IdP: idpName, Subject: claims.Subject, SID: claims.SID}
	if err := revoker.ClaimOnce(ctx, "logout "+claims.Issuer+" "+claims.JTI, iat.Add(logoutTokenMaxAge+logoutTokenSkew)); err != nil {
		if errors.Is(err, ErrReplay) {
			return res, badLogoutToken("the logout token was already used (jti replayed)", nil)
		}
		return res, fmt.Errorf("back-channel logout: recording jti: %w", err)
	}
	var ids []string
	if claims.SID != "" {
		ids, err = revoker.RevokeIdPSessions(ctx, idpName, claims.SID, now)
	} else {
		ids, err = revoker.RevokeUserSessions(ctx, identity.UserID(claims.Issuer, claims.Subject), now)
	}
	res.Sessions = len(ids)
	if err != nil {
		return res, fmt.Errorf("back-channel logout: revoking sessions: %w", err)
	}
	return res, nil
}

// ErrReplay is what a SessionRevoker's ClaimOnce returns for a key
// already claimed.
var ErrReplay = errors.New("one-time identifier already used")

// checkLogoutTyp refuses tokens typed as something else (an access token,
// a security event): the spec recommends typ "logout+jwt"; absent and
// "JWT" are accepted for IdPs that predate it.
func checkLogoutTyp(raw string) error {
	header, _, ok := strings.Cut(raw, ".")
	if !ok {
		return badLogoutToken("logout_token is not a JWT", nil)
	}
	data, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return badLogoutToken("logout_token header is not base64url", err)
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return badLogoutToken("logout_token header is not JSON", err)
	}
	switch strings.ToLower(h.Typ) {
	case "", "jwt", "logout+jwt", "application/logout+jwt":
		return nil
	}
	return badLogoutToken("logout_token has typ "+h.Typ+", not logout+jwt", nil)
}

// verifyLogoutToken finds the browser IdP whose issuer, client id (aud)
// and keys accept the token, and returns its name and the claims.
func (b *Browser) verifyLogoutToken(ctx context.Context, raw string) (string, logoutClaims, error) {
	var firstErr error
	for name, idp := range b.idps {
		client, err := idp.client.get(ctx)
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		tok, err := client.logoutVerifier.Verify(ctx, raw)
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		var c logoutClaims
		if err := tok.Claims(&c); err != nil {
			return "", c, badLogoutToken("logout_token claims are malformed", err)
		}
		return name, c, nil
	}
	return "", logoutClaims{}, badLogoutToken("logout_token is not signed by a configured identity provider for this client", firstErr)
}

func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// checkLogoutClaims checks the claims the verifier does not: iat (and
// exp when present), the event, no nonce, a subject or session, a jti.
func checkLogoutClaims(c logoutClaims, now time.Time) (time.Time, error) {
	if c.IAT == nil {
		return time.Time{}, badLogoutToken("logout_token has no iat", nil)
	}
	iatSec, err := c.IAT.Int64()
	if err != nil {
		return time.Time{}, badLogoutToken("logout_token iat is not an integer", err)
	}
	iat := time.Unix(iatSec, 0)
	if iat.After(now.Add(logoutTokenSkew)) || iat.Before(now.Add(-logoutTokenMaxAge)) {
		return iat, badLogoutToken("logout_token iat is too far from now", nil)
	}
	if c.EXP != nil {
		exp, err := c.EXP.Int64()
		if err != nil || !time.Unix(exp, 0).Add(logoutTokenSkew).After(now) {
			return iat, badLogoutToken("logout_token is expired", err)
		}
	}
	ev, ok := c.Events[BackchannelEvent]
	var member map[string]json.RawMessage
	if !ok || json.Unmarshal(ev, &member) != nil || member == nil {
		return iat, badLogoutToken("logout_token lacks the back-channel logout event", nil)
	}
	switch {
	case c.Nonce != nil:
		return iat, badLogoutToken("logout_token must not carry a nonce", nil)
	case c.Subject == "" && c.SID == "":
		return iat, badLogoutToken("logout_token names neither sub nor sid", nil)
	case c.JTI == "":
		return iat, badLogoutToken("logout_token has no jti", nil)
	case len(c.SID) > maxSIDBytes || len(c.JTI) > 256:
		return iat, badLogoutToken("logout_token sid or jti is too long", nil)
	}
	return iat, nil
}
