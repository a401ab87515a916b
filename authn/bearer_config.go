package authn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// DefaultGroupsClaim is the claim read for group membership when
// IdPConfig.GroupsClaim is empty.
const DefaultGroupsClaim = "groups"

// Token use values accepted by IdPConfig.TokenUse; they match the token_use
// claim Amazon Cognito puts in its ID and access tokens.
const (
	TokenUseID     = "id"
	TokenUseAccess = "access"
)

// DefaultAllowedAlgs are the signature algorithms accepted when
// IdPConfig.AllowedAlgs is empty. All are asymmetric: a verifier that
// accepts HMAC can be fooled with a token "signed" with the public key.
var DefaultAllowedAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"}

// supportedAlgs are the algorithms go-oidc can verify (its
// SupportedSigningAlgs); anything else is rejected at config time.
var supportedAlgs = []string{
	"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA",
}

// IdPConfig describes one identity provider whose JWTs are accepted as
// bearer tokens.
type IdPConfig struct {
	// Name is the configured name of the IdP; it becomes Principal.IdP.
	Name string
	// Issuer is the exact iss value of the IdP's tokens. go-oidc compares it
	// byte for byte, so a trailing slash matters.
	Issuer string
	// Audiences are the accepted aud values. Access tokens that carry
	// token_use "access" and no aud (Amazon Cognito) are matched on their
	// client_id claim instead.
	Audiences []string
	// JWKSURL, when set, is used for the signing keys and OIDC discovery is
	// skipped.
	JWKSURL string
	// GroupsClaim names the claim holding group membership, "groups" by
	// default; Amazon Cognito uses "cognito:groups".
	GroupsClaim string
	// TokenUse, when "id" or "access", requires the token_use claim to equal
	// it (Amazon Cognito). Empty means the claim is not checked.
	TokenUse string
	// AllowedAlgs is the signature algorithm allow-list; DefaultAllowedAlgs
	// when empty. "none" and the HMAC algorithms are always rejected.
	AllowedAlgs []string
	// ClaimsToExpose names extra claims copied, as strings, into
	// Principal.Claims for policy to use.
	ClaimsToExpose []string
	// KeyRefresh says how the IdP's signing keys are kept current.
	KeyRefresh KeyRefresh
	// Userinfo, when set, completes user tokens with the IdP's userinfo
	// (the email a Cognito access token lacks). Nil turns it off.
	Userinfo *UserinfoConfig
}

// CheckAndSetDefaults validates c and fills in defaults. It has no other
// side effects and reports every problem at once, joined with errors.Join.
func (c *IdPConfig) CheckAndSetDefaults() error {
	var errs []error
	if strings.TrimSpace(c.Name) == "" {
		errs = append(errs, errors.New("name: must be set"))
	}
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer: must be set"))
	} else if err := checkEndpointURL(c.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if c.JWKSURL != "" {
		if err := checkEndpointURL(c.JWKSURL); err != nil {
			errs = append(errs, fmt.Errorf("jwks_url: %w", err))
		}
	}
	// An empty audience list would accept any token the issuer ever minted,
	// for any client: the classic confused-deputy mistake.
	if len(c.Audiences) == 0 {
		errs = append(errs, errors.New("audiences: at least one audience is required"))
	}
	for i, aud := range c.Audiences {
		if aud == "" {
			errs = append(errs, fmt.Errorf("audiences[%d]: must not be empty", i))
		}
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = DefaultGroupsClaim
	}
	switch c.TokenUse {
	case "", TokenUseID, TokenUseAccess:
	default:
		errs = append(errs, fmt.Errorf("token_use: %q is not one of \"\", %q, %q", c.TokenUse, TokenUseID, TokenUseAccess))
	}
	if len(c.AllowedAlgs) == 0 {
		c.AllowedAlgs = slices.Clone(DefaultAllowedAlgs)
	}
	for i, alg := range c.AllowedAlgs {
		if err := checkAlg(alg); err != nil {
			errs = append(errs, fmt.Errorf("allowed_algs[%d]: %w", i, err))
		}
	}
	for i, name := range c.ClaimsToExpose {
		if name == "" {
			errs = append(errs, fmt.Errorf("claims_to_expose[%d]: must not be empty", i))
		}
	}
	if err := c.KeyRefresh.CheckAndSetDefaults(); err != nil {
		errs = append(errs, err)
	}
	if c.Userinfo != nil {
		uc := *c.Userinfo // the caller's configuration is not modified
		if err := uc.CheckAndSetDefaults(); err != nil {
			errs = append(errs, err)
		}
		if uc.URL == "" && c.JWKSURL != "" {
			errs = append(errs, errors.New("userinfo.url: required with jwks_url (no discovery document names the endpoint)"))
		}
		c.Userinfo = &uc
	}
	return errors.Join(errs...)
}

// checkAlg rejects algorithms a bearer verifier must never accept.
func checkAlg(alg string) error {
	switch {
	case strings.EqualFold(alg, "none"):
		return errors.New(`"none" is never accepted`)
	case strings.HasPrefix(strings.ToUpper(alg), "HS"):
		return fmt.Errorf("%q: HMAC algorithms are never accepted for IdP tokens", alg)
	case !slices.Contains(supportedAlgs, alg):
		return fmt.Errorf("%q is not supported (one of %s)", alg, strings.Join(supportedAlgs, ", "))
	}
	return nil
}

// checkEndpointURL requires an absolute https URL; plain http is allowed
// only for loopback hosts so local test IdPs work.
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a valid URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http is allowed only for loopback hosts; use https", raw)
	default:
		return fmt.Errorf("%q: scheme must be https", raw)
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
