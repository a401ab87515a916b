package testenv

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// accessTokenClaims are the claims of oidc-provider's JWT access tokens (RFC 9068).
type accessTokenClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
	Email    string   `json:"email"`
	Groups   []string `json:"groups"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
}

// verifyAccessToken checks that raw is a JWT (typ at+jwt) signed by a key in the
// OP's JWKS and returns its claims.
func verifyAccessToken(t *testing.T, p *OIDCProvider, raw string) accessTokenClaims {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("access token is not a JWS: %v", err)
	}
	if typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		t.Errorf("access token typ = %q, want at+jwt", typ)
	}
	var jwks jose.JSONWebKeySet
	if err := getJSON(p.JWKSURI, &jwks); err != nil {
		t.Fatalf("fetching JWKS: %v", err)
	}
	keys := jwks.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		t.Fatalf("access token kid %q is not in the JWKS", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("access token signature: %v", err)
	}
	var c accessTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("access token claims: %v", err)
	}
	if c.Issuer != p.Issuer {
		t.Errorf("access token iss = %q, want %q", c.Issuer, p.Issuer)
	}
	return c
}

type idTokenClaims struct {
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Groups        []string `json:"groups"`
	ACR           string   `json:"acr"`
	AMR           []string `json:"amr"`
	AuthTime      int64    `json:"auth_time"`
}

// verifyIDToken verifies raw with go-oidc, as ztproxy's authn does.
func verifyIDToken(t *testing.T, p *OIDCProvider, client OIDCClient, raw, nonce string) (*oidc.IDToken, idTokenClaims) {
	t.Helper()
	ctx := context.Background()
	op, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	tok, err := op.Verifier(&oidc.Config{ClientID: client.ID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc verify: %v", err)
	}
	if tok.Nonce != nonce {
		t.Errorf("id_token nonce = %q, want %q", tok.Nonce, nonce)
	}
	var c idTokenClaims
	if err := tok.Claims(&c); err != nil {
		t.Fatalf("id_token claims: %v", err)
	}
	return tok, c
}

func TestOIDCProvider(t *testing.T) {
	p := StartOIDC(t, OIDCOptions{})
	t.Logf("oidc-provider startup: %v", p.StartupTime)
	web := p.Client(t, "ztproxy")
	svc := p.Client(t, "svc-reporting")
	alice := p.User(t, "alice")

	t.Run("discovery", func(t *testing.T) {
		var doc struct {
			Issuer         string   `json:"issuer"`
			PKCEMethods    []string `json:"code_challenge_methods_supported"`
			ACRValues      []string `json:"acr_values_supported"`
			EndSession     string   `json:"end_session_endpoint"`
			ResponseTypes  []string `json:"response_types_supported"`
			ScopeSupported []string `json:"scopes_supported"`
		}
		if err := getJSON(p.Issuer+"/.well-known/openid-configuration", &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Issuer != p.Issuer || strings.HasSuffix(doc.Issuer, "/") {
			t.Errorf("issuer = %q, want %q", doc.Issuer, p.Issuer)
		}
		if !slices.Equal(doc.PKCEMethods, []string{"S256"}) {
			t.Errorf("code_challenge_methods_supported = %v, want [S256]", doc.PKCEMethods)
		}
		if !slices.Equal(doc.ACRValues, []string{ACRPassword, ACRMFA}) {
			t.Errorf("acr_values_supported = %v", doc.ACRValues)
		}
		if doc.EndSession == "" {
			t.Error("no end_session_endpoint")
		}
		if !slices.Equal(doc.ResponseTypes, []string{"code"}) {
			t.Errorf("response_types_supported = %v, want [code]", doc.ResponseTypes)
		}
		if !slices.Contains(doc.ScopeSupported, "groups") {
			t.Errorf("scopes_supported = %v, want groups", doc.ScopeSupported)
		}
	})

	t.Run("client_credentials JWT", func(t *testing.T) {
		raw := p.ClientCredentialsToken(t, svc.ID, svc.Secret, p.Resource, "api:read")
		c := verifyAccessToken(t, p, raw)
		if c.Audience != p.Resource || c.ClientID != svc.ID || c.Subject != svc.ID || c.Scope != "api:read" {
			t.Errorf("claims = %+v, want aud %s, client_id/sub %s, scope api:read", c, p.Resource, svc.ID)
		}
	})

	t.Run("client_credentials unknown resource", func(t *testing.T) {
		status, body := p.TokenRequest(t, svc.ID, svc.Secret, url.Values{
			"grant_type": {"client_credentials"}, "resource": {"https://other.ztp.test"},
		})
		if status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_target") {
			t.Errorf("status %d body %s, want 400 invalid_target", status, body)
		}
	})

	t.Run("client_credentials wrong secret", func(t *testing.T) {
		status, body := p.TokenRequest(t, svc.ID, "wrong", url.Values{
			"grant_type": {"client_credentials"}, "resource": {p.Resource},
		})
		if status != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_client") {
			t.Errorf("status %d body %s, want 401 invalid_client", status, body)
		}
	})

	t.Run("code flow with mfa and refresh", func(t *testing.T) {
		tokens := p.CodeFlowTokens(t, web, alice, p.Resource, true)
		_, c := verifyIDToken(t, p, web, tokens.IDToken, tokens.Nonce)
		if c.ACR != ACRMFA || !slices.Contains(c.AMR, "otp") || !slices.Contains(c.AMR, "pwd") {
			t.Errorf("acr = %q amr = %v, want %s with pwd+otp", c.ACR, c.AMR, ACRMFA)
		}
		if c.Email != alice.Email || !c.EmailVerified || !slices.Equal(c.Groups, alice.Groups) {
			t.Errorf("id_token claims = %+v, want %s verified, groups %v", c, alice.Email, alice.Groups)
		}
		at := verifyAccessToken(t, p, tokens.AccessToken)
		if at.Audience != p.Resource || at.Subject != alice.Sub || at.Email != alice.Email {
			t.Errorf("access token claims = %+v, want aud %s sub %s", at, p.Resource, alice.Sub)
		}
		if tokens.RefreshToken == "" {
			t.Fatal("no refresh token")
		}

		refreshed := p.Refresh(t, web, tokens.RefreshToken, p.Resource)
		if refreshed.AccessToken == "" || refreshed.IDToken == "" {
			t.Fatalf("refresh returned %+v", refreshed)
		}
		if got := verifyAccessToken(t, p, refreshed.AccessToken); got.Audience != p.Resource || got.Subject != alice.Sub {
			t.Errorf("refreshed access token claims = %+v", got)
		}
		if _, rc := verifyIDToken(t, p, web, refreshed.IDToken, tokens.Nonce); rc.ACR != ACRMFA {
			t.Errorf("refreshed id_token acr = %q, want %s (kept from the login)", rc.ACR, ACRMFA)
		}
		if refreshed.RefreshToken == "" || refreshed.RefreshToken == tokens.RefreshToken {
			t.Error("refresh token was not rotated")
		}
		status, body := p.TokenRequest(t, web.ID, web.Secret, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken},
		})
		if status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_grant") {
			t.Errorf("reusing a rotated refresh token: status %d body %s, want 400 invalid_grant", status, body)
		}
	})

	t.Run("code flow password only, no resource", func(t *testing.T) {
		bob := p.User(t, "bob")
		tokens := p.CodeFlowTokens(t, web, bob, "", false)
		_, c := verifyIDToken(t, p, web, tokens.IDToken, tokens.Nonce)
		if c.ACR != ACRPassword || !slices.Equal(c.AMR, []string{"pwd"}) {
			t.Errorf("acr = %q amr = %v, want %s [pwd]", c.ACR, c.AMR, ACRPassword)
		}
		if strings.Count(tokens.AccessToken, ".") == 2 {
			t.Errorf("access token without resource should be opaque, got a JWT")
		}
	})

	t.Run("wrong password re-renders the form", func(t *testing.T) {
		c := NewBrowserClient(t)
		resp, err := c.Get(authorizeURL(t, p, web, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !p.isOPPage(resp, "/interaction/") {
			t.Fatalf("authorize landed on %s, want the login form", resp.Request.URL)
		}
		resp, err = c.PostForm(resp.Request.URL.String()+"/login", url.Values{"username": {alice.Sub}, "password": {"nope"}})
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="error"`) || !strings.Contains(body, `id="submit"`) {
			t.Errorf("status %d, body %s; want the form again with an error", resp.StatusCode, body)
		}
	})

	t.Run("PKCE is required", func(t *testing.T) {
		c := NewBrowserClient(t)
		c.CheckRedirect = stopAt(web.RedirectURIs[0])
		q := url.Values{
			"response_type": {"code"}, "client_id": {web.ID}, "redirect_uri": {web.RedirectURIs[0]},
			"scope": {"openid"}, "state": {"s"},
		}
		resp, err := c.Get(p.AuthorizationEndpoint + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		if loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("authorize without code_challenge: %s Location %v, want error=invalid_request", resp.Status, loc)
		}
	})

	t.Run("acr_values step-up forces a new login", func(t *testing.T) {
		c := NewBrowserClient(t)
		c.CheckRedirect = stopAt(web.RedirectURIs[0])
		resp := p.Login(t, c, authorizeURL(t, p, web, nil), alice, false)
		resp.Body.Close()
		if loc, _ := resp.Location(); loc == nil || loc.Query().Get("code") == "" {
			t.Fatalf("first login: %s Location %v", resp.Status, loc)
		}
		// The session now satisfies a plain request without a login form ...
		resp, err := c.Get(authorizeURL(t, p, web, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc, _ := resp.Location(); loc == nil || loc.Query().Get("code") == "" {
			t.Fatalf("silent re-authorization: %s Location %v", resp.Status, loc)
		}
		// ... but not one that asks for MFA.
		resp, err = c.Get(authorizeURL(t, p, web, url.Values{"acr_values": {ACRMFA}}))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if !p.isOPPage(resp, "/interaction/") || !strings.Contains(body, `name="mfa" value="1" checked`) {
			t.Fatalf("acr_values=%s with a password session: %s at %s, want the login form with mfa pre-checked", ACRMFA, resp.Status, resp.Request.URL)
		}
	})

	t.Run("rp-initiated logout", func(t *testing.T) {
		c := NewBrowserClient(t)
		c.CheckRedirect = stopAt(web.RedirectURIs[0])
		resp := p.Login(t, c, authorizeURL(t, p, web, nil), alice, false)
		resp.Body.Close()

		c.CheckRedirect = stopAt(web.PostLogoutRedirectURIs[0])
		q := url.Values{
			"client_id": {web.ID}, "post_logout_redirect_uri": {web.PostLogoutRedirectURIs[0]}, "state": {"bye"},
		}
		resp = p.Logout(t, c, p.EndSessionEndpoint+"?"+q.Encode())
		resp.Body.Close()
		loc, _ := resp.Location()
		if loc == nil || !strings.HasPrefix(loc.String(), web.PostLogoutRedirectURIs[0]) || loc.Query().Get("state") != "bye" {
			t.Fatalf("logout: %s Location %v, want %s?state=bye", resp.Status, loc, web.PostLogoutRedirectURIs[0])
		}
		c.CheckRedirect = stopAt(web.RedirectURIs[0])
		resp, err := c.Get(authorizeURL(t, p, web, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !p.isOPPage(resp, "/interaction/") {
			t.Errorf("after logout authorize went to %s %s, want the login form", resp.Request.URL, resp.Status)
		}
	})
}

func TestOIDCProviderShortTTLs(t *testing.T) {
	p := StartOIDC(t, OIDCOptions{AccessTokenTTL: 2 * time.Second, IDTokenTTL: 3 * time.Second})
	web, svc := p.Client(t, "ztproxy"), p.Client(t, "svc-reporting")

	cc := verifyAccessToken(t, p, p.ClientCredentialsToken(t, svc.ID, svc.Secret, p.Resource))
	if got := cc.Expiry - cc.IssuedAt; got != 2 {
		t.Errorf("client_credentials access token lifetime = %ds, want 2", got)
	}
	tokens := p.CodeFlowTokens(t, web, p.User(t, "alice"), p.Resource, false)
	at := verifyAccessToken(t, p, tokens.AccessToken)
	if got := at.Expiry - at.IssuedAt; got != 2 {
		t.Errorf("code flow access token lifetime = %ds, want 2", got)
	}
	id, _ := verifyIDToken(t, p, web, tokens.IDToken, tokens.Nonce)
	if got := id.Expiry.Sub(id.IssuedAt); got != 3*time.Second {
		t.Errorf("id_token lifetime = %v, want 3s", got)
	}
}

func authorizeURL(t *testing.T, p *OIDCProvider, client OIDCClient, extra url.Values) string {
	t.Helper()
	q := url.Values{
		"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {client.RedirectURIs[0]},
		"scope": {"openid email"}, "state": {randomToken(t)},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return p.AuthorizationEndpoint + "?" + q.Encode()
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
