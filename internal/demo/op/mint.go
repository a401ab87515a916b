package op

import (
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// MintAccessToken signs an access token for the user with the given
// username, for audience, valid for ttl: an RS256 JWT (typ at+jwt) with
// iss, sub, aud, iat, nbf, exp, jti, client_id, scope, email,
// email_verified and groups, verifiable with the provider's JWKS. It is
// how `ztproxy demo idp` gives people trying bearer routes a token without
// a browser sign-in. The token states a sign-in with a password and a
// one-time code at the time it is made (amr pwd, otp; auth_time now), as a
// real sign-in with a second factor would. The token is not recorded:
// userinfo and introspection do not know it.
func (p *Provider) MintAccessToken(username, audience string, ttl time.Duration) (string, time.Time, error) {
	u, ok := p.store.byUsername[username]
	if !ok {
		return "", time.Time{}, fmt.Errorf("demo OP: no user %q", username)
	}
	if audience == "" || ttl <= 0 {
		return "", time.Time{}, fmt.Errorf("demo OP: a token needs an audience and a lifetime")
	}
	jti, err := randomID()
	if err != nil {
		return "", time.Time{}, err
	}
	now := p.store.now().UTC().Truncate(time.Second)
	exp := now.Add(ttl)
	claims, err := json.Marshal(map[string]any{
		"iss": p.Issuer, "sub": u.Sub, "aud": audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(), "jti": jti,
		"client_id": "ztproxy-demo-idp", "scope": "openid email profile groups",
		"email": u.Email, "email_verified": true, "groups": groupsOf(u),
		"amr": []string{"pwd", "otp"}, "auth_time": now.Unix(),
	})
	if err != nil {
		return "", time.Time{}, err
	}
	key := p.store.key
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", key.id))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("demo OP: signer: %w", err)
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("demo OP: signing: %w", err)
	}
	tok, err := jws.CompactSerialize()
	return tok, exp, err
}
