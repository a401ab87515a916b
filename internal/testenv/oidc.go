package testenv

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Assurance levels (acr values) that the test OP issues.
const (
	ACRPassword = "urn:ztp:loa:1"   // password only; amr ["pwd"]
	ACRMFA      = "urn:ztp:loa:mfa" // password and second factor; amr ["pwd","otp"]
)

// DefaultResource is the resource indicator (and JWT access token audience) used
// when OIDCOptions.Resource is empty.
const DefaultResource = "https://api.ztp.test"

// OIDCClient is a client registered at the test OP. A client whose GrantTypes
// include authorization_code is a confidential web client; one with only
// client_credentials is a service client.
type OIDCClient struct {
	ID, Secret             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string // default: authorization_code, refresh_token, client_credentials
	// BackchannelLogoutURI registers the client for OpenID Connect
	// Back-Channel Logout 1.0 (with sid): when the user's session at the
	// OP ends, the OP POSTs a logout token there. An https URI needs
	// OIDCOptions.ExtraCAFile for the OP to trust it.
	BackchannelLogoutURI string
}

// OIDCUser is an end-user account at the test OP. Sub is also accepted as the
// login username, as is Email.
type OIDCUser struct {
	Sub, Email, Password string
	Groups               []string
	// EmailUnverified makes the OP assert email_verified false (ID tokens,
	// userinfo and JWT access tokens); by default emails are verified.
	EmailUnverified bool
	// Username is the user's Cognito-style user name (the username claim of
	// Cognito-mode access tokens and of userinfo); Sub when empty.
	Username string
}

// OIDCOptions configures StartOIDC. Zero TTLs take the OP defaults (access and ID
// tokens 10 min, session 1 h, refresh token 1 d); TTLs are whole seconds.
type OIDCOptions struct {
	Clients []OIDCClient // default: one web client and one service client, see DefaultOIDCClients
	Users   []OIDCUser   // default: DefaultOIDCUsers
	// Resource is the resource indicator of the protected API; JWT access tokens
	// for it carry aud = Resource. Default DefaultResource.
	Resource string
	// ResourceScopes are the scopes the resource server offers. Default
	// api:read api:write.
	ResourceScopes []string

	AccessTokenTTL, IDTokenTTL, SessionTTL, RefreshTokenTTL time.Duration
	// NoRefreshTokenRotation keeps a refresh token valid after use; by default
	// every refresh returns a new refresh token and consumes the old one.
	NoRefreshTokenRotation bool
	// Cognito shapes user JWT access tokens as Amazon Cognito's (no email;
	// token_use "access", username, cognito:groups; scope with the OpenID
	// scopes too) and accepts them at the userinfo endpoint, as Cognito's
	// /oauth2/userInfo does. Client-credentials tokens get token_use
	// "access".
	Cognito bool
	// ExtraCAFile is a PEM file of CA certificates the OP trusts for its
	// own outgoing requests (back-channel logout to a proxy with a dev
	// CA), through NODE_EXTRA_CA_CERTS.
	ExtraCAFile string
}

// DefaultOIDCClients returns the clients registered when OIDCOptions.Clients is
// empty: web client "ztproxy" (redirect http://127.0.0.1/.ztp/callback) and
// service client "svc-reporting".
func DefaultOIDCClients() []OIDCClient {
	return []OIDCClient{
		{
			ID: "ztproxy", Secret: "ztproxy-test-secret",
			RedirectURIs:           []string{"http://127.0.0.1/.ztp/callback"},
			PostLogoutRedirectURIs: []string{"http://127.0.0.1/"},
		},
		{ID: "svc-reporting", Secret: "svc-reporting-test-secret", GrantTypes: []string{"client_credentials"}},
	}
}

// DefaultOIDCUsers returns the users registered when OIDCOptions.Users is empty.
func DefaultOIDCUsers() []OIDCUser {
	return []OIDCUser{
		{Sub: "alice", Email: "alice@ztp.test", Password: "alice-test-pw", Groups: []string{"admins", "eng"}},
		{Sub: "bob", Email: "bob@ztp.test", Password: "bob-test-pw", Groups: []string{"eng"}},
	}
}

// OIDCProvider is a running oidc-provider process. Its endpoints come from the
// discovery document.
type OIDCProvider struct {
	Issuer                string // http://127.0.0.1:<port>, no trailing slash
	AuthorizationEndpoint string
	TokenEndpoint         string
	UserinfoEndpoint      string
	JWKSURI               string
	EndSessionEndpoint    string
	RevocationEndpoint    string
	IntrospectionEndpoint string

	Clients        []OIDCClient // as registered, defaults applied
	Users          []OIDCUser
	Resource       string
	ResourceScopes []string

	// StartupTime is how long the process took from exec to READY.
	StartupTime time.Duration

	proc *nodeProcess
}

// StartOIDC starts the npm oidc-provider test OP (internal/testenv/oidcprovider)
// on a free loopback port and stops it when the test ends. It installs the node
// dependencies first if they are missing.
func StartOIDC(t testing.TB, opts OIDCOptions) *OIDCProvider {
	t.Helper()
	dir := nodePackageDir(t, "oidcprovider")
	p := opts.withDefaults()
	cfgPath := filepath.Join(t.TempDir(), "oidc-config.json")
	cfg, err := json.MarshalIndent(p.opConfig(opts), "", "  ")
	if err != nil {
		t.Fatalf("testenv: encoding OP config: %v", err)
	}
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatalf("testenv: writing OP config: %v", err)
	}

	for attempt := 1; ; attempt++ {
		port := FreePort(t)
		issuer := "http://127.0.0.1:" + strconv.Itoa(port)
		begin := time.Now()
		env := []string{"PORT=" + strconv.Itoa(port), "ISSUER=" + issuer}
		if opts.ExtraCAFile != "" {
			env = append(env, "NODE_EXTRA_CA_CERTS="+opts.ExtraCAFile)
		}
		proc, readyIssuer, err := startNode("oidc-provider", dir, "server.mjs", []string{cfgPath}, env)
		if addrInUse(err) && attempt < 3 {
			continue
		}
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		p.StartupTime = time.Since(begin)
		p.proc = proc
		t.Cleanup(func() {
			proc.stop()
			if t.Failed() {
				t.Logf("testenv: oidc-provider output (tail):\n%s", proc.log.String())
			}
		})
		if readyIssuer != issuer {
			t.Fatalf("testenv: OP announced issuer %q, want %q", readyIssuer, issuer)
		}
		p.Issuer = issuer
		break
	}
	p.loadDiscovery(t)
	return p
}

func (o OIDCOptions) withDefaults() *OIDCProvider {
	p := &OIDCProvider{Clients: o.Clients, Users: o.Users, Resource: o.Resource, ResourceScopes: o.ResourceScopes}
	if len(p.Clients) == 0 {
		p.Clients = DefaultOIDCClients()
	}
	for i := range p.Clients {
		if len(p.Clients[i].GrantTypes) == 0 {
			p.Clients[i].GrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}
		}
	}
	if len(p.Users) == 0 {
		p.Users = DefaultOIDCUsers()
	}
	if p.Resource == "" {
		p.Resource = DefaultResource
	}
	if len(p.ResourceScopes) == 0 {
		p.ResourceScopes = []string{"api:read", "api:write"}
	}
	return p
}

// opConfig is the JSON document server.mjs reads (see config.example.json).
func (p *OIDCProvider) opConfig(o OIDCOptions) map[string]any {
	clients := make([]map[string]any, 0, len(p.Clients))
	for _, c := range p.Clients {
		client := map[string]any{
			"client_id":                 c.ID,
			"client_secret":             c.Secret,
			"redirect_uris":             nonNil(c.RedirectURIs),
			"post_logout_redirect_uris": nonNil(c.PostLogoutRedirectURIs),
			"grant_types":               c.GrantTypes,
		}
		if c.BackchannelLogoutURI != "" {
			client["backchannel_logout_uri"] = c.BackchannelLogoutURI
		}
		clients = append(clients, client)
	}
	users := make([]map[string]any, 0, len(p.Users))
	for _, u := range p.Users {
		user := map[string]any{
			"sub": u.Sub, "email": u.Email, "password": u.Password, "groups": nonNil(u.Groups),
			"email_verified": !u.EmailUnverified,
		}
		if u.Username != "" {
			user["username"] = u.Username
		}
		users = append(users, user)
	}
	ttl := map[string]int{}
	for name, d := range map[string]time.Duration{
		"AccessToken": o.AccessTokenTTL, "IdToken": o.IDTokenTTL,
		"Session": o.SessionTTL, "RefreshToken": o.RefreshTokenTTL,
	} {
		if d > 0 {
			ttl[name] = int(math.Max(1, math.Round(d.Seconds())))
		}
	}
	return map[string]any{
		"clients": clients,
		"users":   users,
		"resources": []map[string]any{{
			"indicator": p.Resource,
			"scope":     joinScopes(p.ResourceScopes),
		}},
		"ttl":                ttl,
		"rotateRefreshToken": !o.NoRefreshTokenRotation,
		"cognito":            o.Cognito,
		"acrValues":          []string{ACRPassword, ACRMFA},
	}
}

func (p *OIDCProvider) loadDiscovery(t testing.TB) {
	t.Helper()
	var doc struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
		UserinfoEndpoint      string `json:"userinfo_endpoint"`
		JWKSURI               string `json:"jwks_uri"`
		EndSessionEndpoint    string `json:"end_session_endpoint"`
		RevocationEndpoint    string `json:"revocation_endpoint"`
		IntrospectionEndpoint string `json:"introspection_endpoint"`
	}
	if err := getJSON(p.Issuer+"/.well-known/openid-configuration", &doc); err != nil {
		t.Fatalf("testenv: OP discovery: %v", err)
	}
	if doc.Issuer != p.Issuer {
		t.Fatalf("testenv: OP discovery issuer %q, want %q", doc.Issuer, p.Issuer)
	}
	p.AuthorizationEndpoint = doc.AuthorizationEndpoint
	p.TokenEndpoint = doc.TokenEndpoint
	p.UserinfoEndpoint = doc.UserinfoEndpoint
	p.JWKSURI = doc.JWKSURI
	p.EndSessionEndpoint = doc.EndSessionEndpoint
	p.RevocationEndpoint = doc.RevocationEndpoint
	p.IntrospectionEndpoint = doc.IntrospectionEndpoint
}

// Client returns the registered client with the given id; it fails the test if
// there is none.
func (p *OIDCProvider) Client(t testing.TB, id string) OIDCClient {
	t.Helper()
	for _, c := range p.Clients {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("testenv: no OIDC client %q", id)
	return OIDCClient{}
}

// User returns the registered user with the given sub; it fails the test if there
// is none.
func (p *OIDCProvider) User(t testing.TB, sub string) OIDCUser {
	t.Helper()
	for _, u := range p.Users {
		if u.Sub == sub {
			return u
		}
	}
	t.Fatalf("testenv: no OIDC user %q", sub)
	return OIDCUser{}
}

func getJSON(url string, v any) error {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
