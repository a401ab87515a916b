package stsdouble

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// tokenVerifier checks web identity tokens the way STS checks them against
// an IAM OIDC identity provider: signature from the JWKS, issuer, audience,
// expiry.
type tokenVerifier struct {
	cfg      OIDC
	verifier *oidc.IDTokenVerifier
}

// webIdentity is what STS takes from a verified token.
type webIdentity struct {
	subject, audience, provider string
	sourceIdentity              string
	tags                        map[string][]string
	transitiveTagKeys           []string
}

func newTokenVerifier(cfg OIDC, now func() time.Time) *tokenVerifier {
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), client), cfg.JWKSURL)
	return &tokenVerifier{
		cfg:      cfg,
		verifier: oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{ClientID: cfg.Audience, Now: now}),
	}
}

// verify returns the identity in token or the STS error for a bad token.
func (v *tokenVerifier) verify(ctx context.Context, token string) (*webIdentity, *Error) {
	invalid := func(msg string) (*webIdentity, *Error) {
		return nil, &Error{Status: http.StatusBadRequest, Code: "InvalidIdentityToken", Message: msg}
	}
	idToken, err := v.verifier.Verify(ctx, token)
	if err != nil {
		var expired *oidc.TokenExpiredError
		switch {
		case errors.As(err, &expired):
			return nil, &Error{Status: http.StatusBadRequest, Code: "ExpiredTokenException", Message: "Token expired: current date/time must be before the expiration date/time " + formatTime(expired.Expiry) + "."}
		case strings.Contains(err.Error(), "different provider"):
			return invalid("No OpenIDConnect provider found in your account for " + issuerOf(err))
		case strings.Contains(err.Error(), "audience"):
			return invalid("Incorrect token audience")
		}
		return invalid("Couldn't verify the token with the provider's keys: " + err.Error())
	}
	var claims struct {
		SourceIdentity string `json:"https://aws.amazon.com/source_identity"`
		Tags           *struct {
			PrincipalTags     map[string][]string `json:"principal_tags"`
			TransitiveTagKeys []string            `json:"transitive_tag_keys"`
		} `json:"https://aws.amazon.com/tags"`
	}
	if err := idToken.Claims(&claims); err != nil {
		return invalid("The claims of the token could not be read.")
	}
	id := &webIdentity{
		subject:        idToken.Subject,
		audience:       v.cfg.Audience,
		provider:       strings.TrimPrefix(strings.TrimPrefix(v.cfg.Issuer, "https://"), "http://"),
		sourceIdentity: claims.SourceIdentity,
	}
	if claims.Tags != nil {
		id.tags = claims.Tags.PrincipalTags
		id.transitiveTagKeys = claims.Tags.TransitiveTagKeys
	}
	return id, nil
}

func issuerOf(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "got "); i >= 0 {
		return strings.Trim(msg[i+4:], "\" ")
	}
	return "the token's issuer"
}
