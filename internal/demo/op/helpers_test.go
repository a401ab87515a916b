package op

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The relying party's registered URIs. Nothing listens on them: the test
// browser stops at the first redirect to the relying party.
const (
	rpCallback   = "http://127.0.0.1:9/.ztp/callback"
	rpLoggedOut  = "http://127.0.0.1:9/.ztp/logged-out"
	testClientID = "ztproxy"
	testSecret   = "demo-client-secret"
)

var testUsers = []User{
	{Sub: "u-alice", Username: "alice", Email: "alice@demo.test", Name: "Alice Engineer", Password: "alice-pw", Groups: []string{"eng"}},
	{Sub: "u-bob", Username: "bob", Email: "bob@demo.test", Name: "Bob Outsider", Password: "bob-pw"},
}

// env is a running provider with a relying party's view of it.
type env struct {
	p        *Provider
	provider *oidc.Provider
	oauth    *oauth2.Config
	ctx      context.Context
}

// start runs a provider on 127.0.0.1:0 and discovers it with go-oidc using
// the exact issuer string.
func start(t *testing.T) *env {
	t.Helper()
	p, err := Start(Config{
		Addr:  "127.0.0.1:0",
		Users: testUsers,
		Clients: []Client{{
			ID: testClientID, Secret: testSecret,
			RedirectURIs: []string{rpCallback}, PostLogoutRedirectURIs: []string{rpLoggedOut},
		}},
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	provider, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery of %q: %v", p.Issuer, err)
	}
	return &env{p: p, provider: provider, ctx: ctx, oauth: &oauth2.Config{
		ClientID: testClientID, ClientSecret: testSecret, RedirectURL: rpCallback,
		Endpoint: provider.Endpoint(),
		Scopes:   []string{oidc.ScopeOpenID, "email", "profile", "groups", oidc.ScopeOfflineAccess},
	}}
}

// browser is an HTTP client with a cookie jar that follows redirects
// within the provider and stops at the relying party.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), "http://127.0.0.1:9/") {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// page is a fetched response with its body read.
type page struct {
	status   int
	location *url.URL
	body     string
	final    *url.URL
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	pg := page{status: resp.StatusCode, body: string(b), final: resp.Request.URL}
	if loc := resp.Header.Get("Location"); loc != "" {
		pg.location, err = resp.Request.URL.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
	}
	return pg
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

// loginForm checks that pg is the login page and returns its hidden fields.
func loginForm(t *testing.T, pg page) url.Values {
	t.Helper()
	if pg.status != http.StatusOK || !strings.Contains(pg.body, `id="submit"`) {
		t.Fatalf("expected the login form, got %d at %s:\n%s", pg.status, pg.final, pg.body)
	}
	for _, want := range []string{"NOT for production", `name="username"`, `name="password"`, "alice", "bob"} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(pg.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("authRequestID") == "" || v.Get("csrf") == "" {
		t.Fatalf("login form lacks hidden fields: %v", v)
	}
	return v
}

// login posts credentials on the form in pg and returns the response.
func login(t *testing.T, c *http.Client, pg page, username, password string) page {
	t.Helper()
	v := loginForm(t, pg)
	v.Set("username", username)
	v.Set("password", password)
	return fetch(t, c, http.MethodPost, pg.final.ResolveReference(&url.URL{Path: "/login"}).String(), v)
}

// codeFrom checks that pg redirects to the relying party's callback with
// the expected state and returns the code.
func codeFrom(t *testing.T, pg page, state string) string {
	t.Helper()
	if pg.location == nil || !strings.HasPrefix(pg.location.String(), rpCallback+"?") {
		t.Fatalf("expected a redirect to %s, got %d Location=%v body=%s", rpCallback, pg.status, pg.location, pg.body)
	}
	q := pg.location.Query()
	if q.Get("state") != state {
		t.Fatalf("state = %q, want %q", q.Get("state"), state)
	}
	if q.Get("error") != "" || q.Get("code") == "" {
		t.Fatalf("callback carries no code: %v", q)
	}
	return q.Get("code")
}

// flow is one sign-in in progress: its state, nonce and PKCE verifier.
type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
}

// authURL builds the authorization URL with PKCE S256 and a nonce.
func (e *env) authURL(f flow, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)}, extra...)
	return e.oauth.AuthCodeURL(f.state, opts...)
}

// signIn runs the browser part of a sign-in and returns the code.
func (e *env) signIn(t *testing.T, c *http.Client, f flow, username, password string) string {
	t.Helper()
	pg := fetch(t, c, http.MethodGet, e.authURL(f), nil)
	return codeFrom(t, login(t, c, pg, username, password), f.state)
}

// idClaims are the ID token claims the proxy relies on.
type idClaims struct {
	Sub           string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
	AMR           []string `json:"amr"`
	AuthTime      int64    `json:"auth_time"`
	Nonce         string   `json:"nonce"`
	AtHash        string   `json:"at_hash"`
}

// verifyID verifies the token response's ID token with go-oidc and returns
// its claims.
func (e *env) verifyID(t *testing.T, tok *oauth2.Token) (*oidc.IDToken, idClaims) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("token response has no id_token")
	}
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: testClientID}).Verify(e.ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
	}
	return idt, c
}

// asRetrieve reports whether err is an *oauth2.RetrieveError.
func asRetrieve(err error, target **oauth2.RetrieveError) bool { return errors.As(err, target) }
