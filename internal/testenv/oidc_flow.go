package testenv

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Tokens is a token endpoint response.
type Tokens struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	// Nonce is the nonce CodeFlowTokens sent; the ID token must echo it.
	Nonce string `json:"-"`
}

// ClientCredentialsToken gets an access token via client_credentials. With a
// resource it is a JWT whose aud is resource; scopes are filtered to those the
// resource server offers.
func (p *OIDCProvider) ClientCredentialsToken(t testing.TB, clientID, secret, resource string, scopes ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if resource != "" {
		form.Set("resource", resource)
	}
	if len(scopes) > 0 {
		form.Set("scope", joinScopes(scopes))
	}
	return p.token(t, clientID, secret, form).AccessToken
}

// CodeFlowTokens drives a full authorization code + PKCE (S256) flow for user with
// a plain http.Client, as a browser would: authorize, the OP's login form (with
// the second-factor box ticked when mfa), automatic consent, the redirect to the
// client's first redirect URI, and the code exchange. With a resource the access
// token is a JWT for it; scopes default to openid email groups profile
// offline_access plus the resource's scopes.
func (p *OIDCProvider) CodeFlowTokens(t testing.TB, client OIDCClient, user OIDCUser, resource string, mfa bool) Tokens {
	t.Helper()
	if len(client.RedirectURIs) == 0 {
		t.Fatalf("testenv: client %q has no redirect URI", client.ID)
	}
	redirectURI := client.RedirectURIs[0]
	verifier, state, nonce := randomToken(t), randomToken(t), randomToken(t)
	challenge := sha256.Sum256([]byte(verifier))
	scopes := []string{"openid", "email", "groups", "profile", "offline_access"}
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {client.ID},
		"redirect_uri":          {redirectURI},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	if resource != "" {
		q.Set("resource", resource)
		scopes = append(scopes, p.ResourceScopes...)
	}
	q.Set("scope", joinScopes(scopes))

	c := NewBrowserClient(t)
	c.CheckRedirect = stopAt(redirectURI)
	resp := p.Login(t, c, p.AuthorizationEndpoint+"?"+q.Encode(), user, mfa)
	resp.Body.Close()
	callback, err := resp.Location()
	if err != nil || !strings.HasPrefix(callback.String(), redirectURI) {
		t.Fatalf("testenv: code flow for %s ended at %s %s (Location %v), want a redirect to %s",
			user.Sub, resp.Request.URL, resp.Status, callback, redirectURI)
	}
	cb := callback.Query()
	if e := cb.Get("error"); e != "" {
		t.Fatalf("testenv: authorization error %s: %s", e, cb.Get("error_description"))
	}
	if cb.Get("state") != state || cb.Get("iss") != p.Issuer {
		t.Fatalf("testenv: callback state/iss mismatch: %s", callback)
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {cb.Get("code")},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}
	if resource != "" {
		form.Set("resource", resource)
	}
	tokens := p.token(t, client.ID, client.Secret, form)
	tokens.Nonce = nonce
	return tokens
}

// Refresh redeems a refresh token. By default the OP rotates refresh tokens, so
// the returned RefreshToken replaces the old one.
func (p *OIDCProvider) Refresh(t testing.TB, client OIDCClient, refreshToken, resource string) Tokens {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if resource != "" {
		form.Set("resource", resource)
	}
	return p.token(t, client.ID, client.Secret, form)
}

// TokenRequest posts form to the token endpoint with client_secret_basic and
// returns the status and the raw body, for tests of error responses.
func (p *OIDCProvider) TokenRequest(t testing.TB, clientID, secret string, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("testenv: token request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("testenv: token request: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("testenv: reading token response: %v", err)
	}
	return resp.StatusCode, body
}

func (p *OIDCProvider) token(t testing.TB, clientID, secret string, form url.Values) Tokens {
	t.Helper()
	status, body := p.TokenRequest(t, clientID, secret, form)
	if status != http.StatusOK {
		t.Fatalf("testenv: %s grant for %s: status %d: %s", form.Get("grant_type"), clientID, status, body)
	}
	var tok Tokens
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatalf("testenv: decoding token response: %v", err)
	}
	return tok
}

// NewBrowserClient returns an http.Client with a cookie jar, as a browser keeps
// cookies across the redirects of a login.
func NewBrowserClient(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("testenv: cookie jar: %v", err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// Login requests startURL with c (which needs a cookie jar), following redirects
// as c allows. If that lands on this OP's login form, it signs in as user —
// ticking "I used my second factor" when mfa — and returns the response after the
// redirects that follow; otherwise it returns the first response (e.g. when the
// OP session already satisfies the request). startURL may be the OP's authorize
// URL or any page of a relying party that redirects there.
func (p *OIDCProvider) Login(t testing.TB, c *http.Client, startURL string, user OIDCUser, mfa bool) *http.Response {
	t.Helper()
	resp, err := c.Get(startURL)
	if err != nil {
		t.Fatalf("testenv: GET %s: %v", startURL, err)
	}
	if !p.isOPPage(resp, "/interaction/") || resp.StatusCode != http.StatusOK {
		return resp
	}
	page := resp.Request.URL
	resp.Body.Close()
	form := url.Values{"username": {user.Sub}, "password": {user.Password}}
	if mfa {
		form.Set("mfa", "1")
	}
	resp, err = c.PostForm(strings.TrimSuffix(page.String(), "/")+"/login", form)
	if err != nil {
		t.Fatalf("testenv: posting login for %s: %v", user.Sub, err)
	}
	if p.isOPPage(resp, "/interaction/") && resp.StatusCode == http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("testenv: OP rejected login for %s: %s", user.Sub, errorText(body))
	}
	return resp
}

var (
	logoutFormRE = regexp.MustCompile(`<form[^>]*\baction="([^"]+)"[^>]*>`)
	xsrfRE       = regexp.MustCompile(`<input[^>]*name="xsrf"[^>]*value="([^"]*)"`)
	errorRE      = regexp.MustCompile(`<p id="error"[^>]*>([^<]*)</p>`)
)

// Logout requests startURL with c (an RP logout URL or the OP's end-session URL),
// confirms the OP's sign-out form as its page script would in a browser, and
// returns the response after the redirects that follow.
func (p *OIDCProvider) Logout(t testing.TB, c *http.Client, startURL string) *http.Response {
	t.Helper()
	resp, err := c.Get(startURL)
	if err != nil {
		t.Fatalf("testenv: GET %s: %v", startURL, err)
	}
	if !p.isOPPage(resp, "/session/end") || resp.StatusCode != http.StatusOK {
		return resp
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("testenv: reading OP logout page: %v", err)
	}
	action, xsrf := logoutFormRE.FindSubmatch(body), xsrfRE.FindSubmatch(body)
	if action == nil || xsrf == nil {
		t.Fatalf("testenv: OP logout page has no confirmation form: %s", errorText(body))
	}
	target, err := resp.Request.URL.Parse(html.UnescapeString(string(action[1])))
	if err != nil {
		t.Fatalf("testenv: OP logout form action: %v", err)
	}
	resp, err = c.PostForm(target.String(), url.Values{"xsrf": {html.UnescapeString(string(xsrf[1]))}, "logout": {"yes"}})
	if err != nil {
		t.Fatalf("testenv: confirming OP logout: %v", err)
	}
	return resp
}

// isOPPage reports whether resp is this OP's page under pathPrefix.
func (p *OIDCProvider) isOPPage(resp *http.Response, pathPrefix string) bool {
	u := resp.Request.URL
	return u.Scheme+"://"+u.Host == p.Issuer && strings.HasPrefix(u.Path, pathPrefix)
}

// stopAt makes a client stop following redirects at target, which in tests is
// often a host that does not exist.
func stopAt(target string) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), target) {
			return http.ErrUseLastResponse
		}
		if len(via) >= 20 {
			return fmt.Errorf("stopped after %d redirects", len(via))
		}
		return nil
	}
}

func errorText(body []byte) string {
	if m := errorRE.FindSubmatch(body); m != nil {
		return html.UnescapeString(string(m[1]))
	}
	if len(body) > 512 {
		body = body[:512]
	}
	return string(body)
}

func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func joinScopes(scopes []string) string { return strings.Join(scopes, " ") }
