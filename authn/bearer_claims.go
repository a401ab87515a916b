package authn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"ztproxy/identity"
)

// bearerClaims are the claims read from a verified token besides those
// go-oidc already checked. The rest of the payload is kept raw so
// configurable claims (groups, exposed claims) can be read by name.
type bearerClaims struct {
	Audience      json.RawMessage `json:"aud"`
	ClientID      string          `json:"client_id"`
	TokenUse      string          `json:"token_use"`
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	Name          string          `json:"name"`
	// Username is Amazon Cognito's user name: username in access
	// tokens, cognito:username in ID tokens.
	Username        string          `json:"username"`
	CognitoUsername string          `json:"cognito:username"`
	Scope           json.RawMessage `json:"scope"`
	SCP             json.RawMessage `json:"scp"`
	AMR             json.RawMessage `json:"amr"`
	ACR             string          `json:"acr"`
	AuthTime        json.Number     `json:"auth_time"`
}

// principalFromToken checks the claims go-oidc leaves to the caller
// (audience, token_use, subject) and builds the principal.
func (p *idpVerifier) principalFromToken(tok *oidc.IDToken) (identity.Principal, error) {
	var c bearerClaims
	if err := tok.Claims(&c); err != nil {
		return identity.Principal{}, fmt.Errorf("decoding claims: %w", err)
	}
	if tok.Subject == "" {
		return identity.Principal{}, errors.New("token has no sub claim")
	}
	if err := p.checkAudience(tok.Audience, &c); err != nil {
		return identity.Principal{}, err
	}
	if p.cfg.TokenUse != "" && c.TokenUse != p.cfg.TokenUse {
		return identity.Principal{}, fmt.Errorf("token_use %q, want %q", c.TokenUse, p.cfg.TokenUse)
	}
	return buildPrincipal(tok, &c, p.cfg.Name, p.cfg.GroupsClaim, p.cfg.ClaimsToExpose, identity.AuthBearer, p.logger)
}

// buildPrincipal turns a verified token's claims into a principal; it is
// shared by bearer tokens and browser sign-in ID tokens (and their
// refreshes). An email claim that is not one plain address (checkEmail) is
// dropped, with email_verified, and the drop is logged with its reason.
func buildPrincipal(tok *oidc.IDToken, c *bearerClaims, idpName, groupsClaim string, expose []string, kind identity.AuthKind, logger *slog.Logger) (identity.Principal, error) {
	var raw map[string]json.RawMessage
	if err := tok.Claims(&raw); err != nil {
		return identity.Principal{}, fmt.Errorf("decoding claims: %w", err)
	}
	groups, err := stringList(raw[groupsClaim])
	if err != nil {
		return identity.Principal{}, fmt.Errorf("claim %q: %w", groupsClaim, err)
	}
	amr, err := stringList(c.AMR)
	if err != nil {
		return identity.Principal{}, fmt.Errorf("claim amr: %w", err)
	}
	emailVerified, err := jsonBool(c.EmailVerified)
	if err != nil {
		return identity.Principal{}, fmt.Errorf("claim email_verified: %w", err)
	}
	authTime, err := unixTime(c.AuthTime)
	if err != nil {
		return identity.Principal{}, fmt.Errorf("claim auth_time: %w", err)
	}
	scopes, err := scopeList(c.Scope, c.SCP)
	if err != nil {
		return identity.Principal{}, err
	}
	email := acceptedEmail(c.Email, idpName, tok.Subject, logger)
	if email == "" {
		emailVerified = false
	}
	principalKind := identity.KindUser
	// A client-credentials access token is issued to the client itself:
	// Cognito sets sub to the client id and puts no user claims in it.
	if c.TokenUse == TokenUseAccess && c.ClientID != "" && tok.Subject == c.ClientID {
		principalKind = identity.KindService
	}
	return identity.Principal{
		Kind:          principalKind,
		ID:            identity.UserID(tok.Issuer, tok.Subject),
		Issuer:        tok.Issuer,
		Subject:       tok.Subject,
		Email:         email,
		EmailVerified: emailVerified,
		Name:          c.Name,
		Username:      c.username(),
		Groups:        groups,
		Scopes:        scopes,
		Claims:        exposedClaims(raw, expose),
		AuthKind:      kind,
		AMR:           amr,
		ACR:           c.ACR,
		AuthTime:      authTime,
		Expiry:        tok.Expiry,
		IdP:           idpName,
	}, nil
}

// username is the token's Cognito user name: username (access tokens),
// else cognito:username (ID tokens). preferred_username is not read: most
// IdPs let users choose it, so it is neither unique nor stable.
func (c *bearerClaims) username() string {
	if c.Username != "" {
		return c.Username
	}
	return c.CognitoUsername
}

// scopeList reads the granted scopes: the scope claim (RFC 9068, Cognito: a
// space-separated string) or, without it, scp (Okta, Entra: an array or a
// string). Scope tokens never contain spaces, so they are split on spaces
// only. Any other shape rejects the token, as a malformed groups claim does.
func scopeList(scope, scp json.RawMessage) ([]string, error) {
	name, v := "scope", scope
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		name, v = "scp", scp
	}
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return strings.Fields(s), nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, fmt.Errorf("claim %s: want a string or an array of strings", name)
	}
	return slices.DeleteFunc(list, func(s string) bool { return s == "" }), nil
}

// acceptedEmail returns email when it is one plain address and "" (after
// logging why, without the value) otherwise.
func acceptedEmail(email, idpName, sub string, logger *slog.Logger) string {
	if email == "" {
		return ""
	}
	if why := checkEmail(email); why != "" {
		logger.Warn("authn: email claim dropped: not one plain address", "idp", idpName, "sub", sub, "reason", why, "length", len(email))
		return ""
	}
	return email
}

// checkAudience requires aud to name one of the configured audiences. A
// token without aud is accepted only as a Cognito-style access token
// (token_use "access") whose client_id is a configured audience.
func (p *idpVerifier) checkAudience(aud []string, c *bearerClaims) error {
	if len(aud) > 0 {
		for _, a := range aud {
			if slices.Contains(p.cfg.Audiences, a) {
				return nil
			}
		}
		return fmt.Errorf("audience %q not accepted", aud)
	}
	if len(c.Audience) > 0 && !bytes.Equal(c.Audience, []byte("null")) {
		// Present but empty ("" or []): not the Cognito shape.
		return errors.New("empty aud claim")
	}
	if c.TokenUse == TokenUseAccess && c.ClientID != "" && slices.Contains(p.cfg.Audiences, c.ClientID) {
		return nil
	}
	return fmt.Errorf("no aud claim and client_id %q not accepted", c.ClientID)
}

// exposedClaims copies the configured extra claims as strings: JSON strings
// as their value, anything else as its compact JSON text.
func exposedClaims(raw map[string]json.RawMessage, expose []string) map[string]string {
	var out map[string]string
	for _, name := range expose {
		v, ok := raw[name]
		if !ok || bytes.Equal(v, []byte("null")) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(expose))
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[name] = s
			continue
		}
		var compact bytes.Buffer
		if json.Compact(&compact, v) == nil {
			out[name] = compact.String()
		}
	}
	return out
}

// stringList reads a claim that is either an array of strings or a single
// string of space- or comma-separated values (IdPs disagree). Absent and
// null give nil; any other shape is an error rather than a silently empty
// list, because policy may forbid on group membership.
func stringList(v json.RawMessage) ([]string, error) {
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err == nil {
		return slices.DeleteFunc(list, func(s string) bool { return s == "" }), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, errors.New("want a string or an array of strings")
	}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	if len(fields) == 0 {
		return nil, nil
	}
	return fields, nil
}

// jsonBool reads a boolean that some IdPs send as the string "true".
func jsonBool(v json.RawMessage) (bool, error) {
	switch string(v) {
	case "", "null", "false", `"false"`:
		return false, nil
	case "true", `"true"`:
		return true, nil
	}
	return false, errors.New("want a boolean")
}

// unixTime reads a NumericDate; zero when absent.
func unixTime(n json.Number) (time.Time, error) {
	if n == "" {
		return time.Time{}, nil
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(int64(f), 0), nil
}
