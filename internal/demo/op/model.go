package op

import (
	"crypto/rsa"
	"log/slog"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// scopeGroups is the non-standard scope that the demo provider advertises for
// the groups claim. The claim is issued whether or not it is requested, as
// Cognito does with cognito:groups, so that a relying party configured for
// "openid email profile" still sees group membership.
const scopeGroups = "groups"

// authRequest is the provider's record of one authorization request, from
// the authorize endpoint until its code is redeemed.
type authRequest struct {
	id            string
	created       time.Time
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	prompt        []string
	maxAge        *uint
	loginHint     string
	codeChallenge *oidc.CodeChallenge

	// The fields below are set once the user has signed in.
	userID   string
	authTime time.Time
	done     bool
}

var (
	_ zop.AuthRequest = (*authRequest)(nil)
	_ slog.LogValuer  = (*authRequest)(nil)
)

// GetID returns the request's opaque identifier.
func (a *authRequest) GetID() string { return a.id }

// GetACR returns the authentication context class; the demo sets none.
func (a *authRequest) GetACR() string { return "" }

// GetAMR returns the authentication methods used: a password, once signed in.
func (a *authRequest) GetAMR() []string {
	if a.done {
		return []string{"pwd"}
	}
	return nil
}

// GetAudience returns the ID token audience, which is the client alone.
func (a *authRequest) GetAudience() []string { return []string{a.clientID} }

// GetAuthTime returns when the user entered their password.
func (a *authRequest) GetAuthTime() time.Time { return a.authTime }

// GetClientID returns the requesting client's id.
func (a *authRequest) GetClientID() string { return a.clientID }

// GetCodeChallenge returns the PKCE challenge that the code verifier must match.
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }

// GetNonce returns the nonce to echo in the ID token.
func (a *authRequest) GetNonce() string { return a.nonce }

// GetRedirectURI returns the validated redirect_uri.
func (a *authRequest) GetRedirectURI() string { return a.redirectURI }

// GetResponseType returns the requested response type.
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.responseType }

// GetResponseMode returns the requested response mode.
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.responseMode }

// GetScopes returns the granted scopes.
func (a *authRequest) GetScopes() []string { return a.scopes }

// GetState returns the client's state value.
func (a *authRequest) GetState() string { return a.state }

// GetSubject returns the signed-in user's subject.
func (a *authRequest) GetSubject() string { return a.userID }

// Done reports whether the user has signed in.
func (a *authRequest) Done() bool { return a.done }

// LogValue keeps secrets such as the nonce and the PKCE challenge out of the
// library's log lines.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", a.id),
		slog.String("client_id", a.clientID),
		slog.String("redirect_uri", a.redirectURI),
		slog.Any("scopes", a.scopes),
	)
}

// refreshToken is a stored refresh token. Its value is its id: an opaque
// random string that is rotated on every use.
type refreshToken struct {
	id       string
	clientID string
	userID   string
	scopes   []string
	amr      []string
	authTime time.Time
	expires  time.Time
	accessID string
}

// refreshRequest adapts a stored refresh token to the library's
// RefreshTokenRequest; the library may narrow its scopes.
type refreshRequest struct {
	token  refreshToken
	scopes []string
}

var _ zop.RefreshTokenRequest = (*refreshRequest)(nil)

// GetAMR returns the authentication methods of the original sign-in.
func (r *refreshRequest) GetAMR() []string { return r.token.amr }

// GetAudience returns the ID token audience, which is the client alone.
func (r *refreshRequest) GetAudience() []string { return []string{r.token.clientID} }

// GetAuthTime returns when the user originally signed in.
func (r *refreshRequest) GetAuthTime() time.Time { return r.token.authTime }

// GetClientID returns the client the token was issued to.
func (r *refreshRequest) GetClientID() string { return r.token.clientID }

// GetScopes returns the scopes of this refresh.
func (r *refreshRequest) GetScopes() []string { return r.scopes }

// GetSubject returns the user's subject.
func (r *refreshRequest) GetSubject() string { return r.token.userID }

// SetCurrentScopes narrows the scopes for this refresh.
func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.scopes = scopes }

// accessToken is a stored access token, looked up by the userinfo endpoint.
type accessToken struct {
	id       string
	clientID string
	userID   string
	scopes   []string
	expires  time.Time
}

// client adapts a configured Client to the library's Client interface: a
// confidential web client using the code flow, exact redirect URIs only.
type client struct {
	cfg        Client
	loginURL   func(id string) string
	idTokenTTL time.Duration
}

var _ zop.Client = (*client)(nil)

// GetID returns the client_id.
func (c *client) GetID() string { return c.cfg.ID }

// RedirectURIs returns the registered redirect URIs, matched exactly.
func (c *client) RedirectURIs() []string { return c.cfg.RedirectURIs }

// PostLogoutRedirectURIs returns the registered post-logout redirect URIs.
func (c *client) PostLogoutRedirectURIs() []string { return c.cfg.PostLogoutRedirectURIs }

// ApplicationType marks the client as a confidential web application.
func (c *client) ApplicationType() zop.ApplicationType { return zop.ApplicationTypeWeb }

// AuthMethod returns client_secret_basic; the provider also accepts
// client_secret_post because the configuration enables it.
func (c *client) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }

// ResponseTypes allows the authorization code flow only.
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes allows the authorization_code and refresh_token grants.
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

// LoginURL returns the provider's own login page for an auth request.
func (c *client) LoginURL(id string) string { return c.loginURL(id) }

// AccessTokenType makes access tokens signed JWTs, as Cognito's are.
func (c *client) AccessTokenType() zop.AccessTokenType { return zop.AccessTokenTypeJWT }

// IDTokenLifetime returns the configured ID token lifetime.
func (c *client) IDTokenLifetime() time.Duration { return c.idTokenTTL }

// DevMode is off, so redirect URIs must match exactly with no globbing.
func (c *client) DevMode() bool { return false }

// RestrictAdditionalIdTokenScopes keeps every granted scope.
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// RestrictAdditionalAccessTokenScopes keeps every granted scope.
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed admits the groups scope besides the standard ones.
func (c *client) IsScopeAllowed(scope string) bool { return scope == scopeGroups }

// IDTokenUserinfoClaimsAssertion puts email and profile claims into the ID
// token even when an access token is issued, as Cognito does and as the
// proxy expects.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

// ClockSkew is zero.
func (c *client) ClockSkew() time.Duration { return 0 }

// signingKey is the provider's RSA key, generated at start-up and never
// persisted; it implements both op.SigningKey and op.Key.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

// SignatureAlgorithm returns RS256.
func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }

// ID returns the key id published in the JWKS.
func (k *signingKey) ID() string { return k.id }

// Key returns the private key for signing.
func (k *signingKey) Key() any { return k.key }

// publicKey is the public half of signingKey, as published in the JWKS.
type publicKey struct{ k *signingKey }

// ID returns the key id.
func (p publicKey) ID() string { return p.k.id }

// Algorithm returns RS256.
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }

// Use returns "sig".
func (p publicKey) Use() string { return "sig" }

// Key returns the RSA public key.
func (p publicKey) Key() any { return &p.k.key.PublicKey }

// hasScope reports whether scopes contains s.
func hasScope(scopes []string, s string) bool { return slices.Contains(scopes, s) }
