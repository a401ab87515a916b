package op

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestDiscoveryMatchesIssuer(t *testing.T) {
	e := start(t)
	if !strings.HasPrefix(e.p.Issuer, "http://127.0.0.1:") || strings.HasSuffix(e.p.Issuer, "/") {
		t.Fatalf("Issuer = %q, want http://127.0.0.1:PORT", e.p.Issuer)
	}
	resp, err := http.Get(e.p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Issuer        string   `json:"issuer"`
		EndSession    string   `json:"end_session_endpoint"`
		JWKS          string   `json:"jwks_uri"`
		Userinfo      string   `json:"userinfo_endpoint"`
		PKCE          []string `json:"code_challenge_methods_supported"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
		Scopes        []string `json:"scopes_supported"`
		GrantTypes    []string `json:"grant_types_supported"`
		ResponseTypes []string `json:"response_types_supported"`
		Claims        []string `json:"claims_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != e.p.Issuer {
		t.Errorf("discovery issuer %q != Provider.Issuer %q", d.Issuer, e.p.Issuer)
	}
	if d.EndSession != e.p.Issuer+"/end_session" || d.JWKS == "" || d.Userinfo == "" {
		t.Errorf("endpoints: end_session=%q jwks=%q userinfo=%q", d.EndSession, d.JWKS, d.Userinfo)
	}
	if !slices.Equal(d.PKCE, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v", d.PKCE)
	}
	for _, want := range []struct {
		list []string
		item string
	}{
		{d.AuthMethods, "client_secret_basic"}, {d.AuthMethods, "client_secret_post"},
		{d.Scopes, "openid"}, {d.Scopes, "email"}, {d.Scopes, "profile"}, {d.Scopes, "groups"}, {d.Scopes, "offline_access"},
		{d.GrantTypes, "authorization_code"}, {d.GrantTypes, "refresh_token"},
		{d.ResponseTypes, "code"}, {d.Claims, "groups"},
	} {
		if !slices.Contains(want.list, want.item) {
			t.Errorf("discovery lacks %q in %v", want.item, want.list)
		}
	}
	if resp, err := http.Get(d.JWKS); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("JWKS: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestCodeFlowWithPKCERefreshAndUserinfo(t *testing.T) {
	e := start(t)
	c := browser(t)
	f := newFlow()
	before := time.Now().Add(-time.Second)
	code := e.signIn(t, c, f, "alice", "alice-pw")

	tok, err := e.oauth.Exchange(e.ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token despite offline_access")
	}
	if d := time.Until(tok.Expiry); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("access token lifetime %v, want about 10m", d)
	}
	idt, cl := e.verifyID(t, tok)
	if cl.Nonce != f.nonce || idt.Nonce != f.nonce {
		t.Errorf("nonce = %q, want %q", cl.Nonce, f.nonce)
	}
	if cl.Sub != "u-alice" || cl.Email != "alice@demo.test" || !cl.EmailVerified || cl.Name != "Alice Engineer" {
		t.Errorf("claims = %+v", cl)
	}
	if !slices.Equal(cl.Groups, []string{"eng"}) || !slices.Equal(cl.AMR, []string{"pwd"}) {
		t.Errorf("groups=%v amr=%v", cl.Groups, cl.AMR)
	}
	if cl.AtHash == "" || cl.AuthTime < before.Unix() || cl.AuthTime > time.Now().Unix() {
		t.Errorf("at_hash=%q auth_time=%d", cl.AtHash, cl.AuthTime)
	}
	if d := time.Until(idt.Expiry); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("ID token lifetime %v, want about 10m", d)
	}

	// The code works once.
	if _, err := e.oauth.Exchange(e.ctx, code, oauth2.VerifierOption(f.verifier)); err == nil {
		t.Error("a redeemed code was accepted again")
	}

	ui, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uc idClaims
	if err := ui.Claims(&uc); err != nil || uc.Sub != "u-alice" || !slices.Equal(uc.Groups, []string{"eng"}) || ui.Email != "alice@demo.test" {
		t.Errorf("userinfo = %+v %+v %v", ui, uc, err)
	}

	// Refresh: a new ID token for the same user and original auth_time, and
	// a rotated refresh token.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	tok2, err := e.oauth.TokenSource(e.ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Error("refresh did not issue new access and refresh tokens")
	}
	_, cl2 := e.verifyID(t, tok2)
	if cl2.Sub != cl.Sub || cl2.AuthTime != cl.AuthTime || !slices.Equal(cl2.Groups, cl.Groups) || !slices.Equal(cl2.AMR, []string{"pwd"}) {
		t.Errorf("refreshed claims = %+v, want like %+v", cl2, cl)
	}
	// The old refresh token was rotated away.
	_, err = e.oauth.TokenSource(e.ctx, &expired).Token()
	var re *oauth2.RetrieveError
	if err == nil || !asRetrieve(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("reused refresh token: err = %v, want invalid_grant", err)
	}
}

func TestClientSecretPostAndUserOutsideGroup(t *testing.T) {
	e := start(t)
	e.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	f := newFlow()
	code := e.signIn(t, browser(t), f, "bob", "bob-pw")
	tok, err := e.oauth.Exchange(e.ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange with client_secret_post: %v", err)
	}
	_, cl := e.verifyID(t, tok)
	if cl.Sub != "u-bob" || cl.Groups == nil || len(cl.Groups) != 0 {
		t.Errorf("bob's claims = %+v, want an empty groups array", cl)
	}

	// A wrong client secret is refused.
	bad := *e.oauth
	bad.ClientSecret = "wrong"
	f = newFlow()
	code = e.signIn(t, browser(t), f, "bob", "bob-pw")
	if _, err := bad.Exchange(e.ctx, code, oauth2.VerifierOption(f.verifier)); err == nil {
		t.Error("wrong client secret accepted")
	}
}

func TestWrongPasswordShowsError(t *testing.T) {
	e := start(t)
	c := browser(t)
	f := newFlow()
	pg := fetch(t, c, http.MethodGet, e.authURL(f), nil)
	again := login(t, c, pg, "alice", "not-her-password")
	if again.location != nil || !strings.Contains(again.body, "Wrong username or password") {
		t.Fatalf("wrong password: %d %v\n%s", again.status, again.location, again.body)
	}
	loginForm(t, again) // the form is shown again
	if again2 := login(t, c, again, "nobody", "x"); !strings.Contains(again2.body, "Wrong username or password") {
		t.Fatal("unknown user not refused")
	}
	// The same form then works with the right password.
	codeFrom(t, login(t, c, again, "alice", "alice-pw"), f.state)
}

func TestPKCE(t *testing.T) {
	e := start(t)
	t.Run("verifier mismatch fails the exchange", func(t *testing.T) {
		f := newFlow()
		code := e.signIn(t, browser(t), f, "alice", "alice-pw")
		_, err := e.oauth.Exchange(e.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		var re *oauth2.RetrieveError
		if err == nil || !asRetrieve(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("err = %v, want invalid_grant", err)
		}
		// The failed attempt burnt the code.
		if _, err := e.oauth.Exchange(e.ctx, code, oauth2.VerifierOption(f.verifier)); err == nil {
			t.Error("code still usable after a failed PKCE check")
		}
	})
	t.Run("missing verifier fails the exchange", func(t *testing.T) {
		f := newFlow()
		code := e.signIn(t, browser(t), f, "alice", "alice-pw")
		if _, err := e.oauth.Exchange(e.ctx, code); err == nil {
			t.Fatal("exchange without code_verifier succeeded")
		}
	})
	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"no challenge": nil,
		"plain":        {oauth2.SetAuthURLParam("code_challenge", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrs"), oauth2.SetAuthURLParam("code_challenge_method", "plain")},
	} {
		t.Run("authorize refuses "+name, func(t *testing.T) {
			u := e.oauth.AuthCodeURL("st", append([]oauth2.AuthCodeOption{oidc.Nonce("n")}, opts...)...)
			pg := fetch(t, browser(t), http.MethodGet, u, nil)
			if pg.location == nil || pg.location.Query().Get("error") != "invalid_request" || pg.location.Query().Get("state") != "st" {
				t.Fatalf("got %d Location=%v", pg.status, pg.location)
			}
		})
	}
}

func TestUnknownRedirectURIRejected(t *testing.T) {
	e := start(t)
	for _, ru := range []string{"http://127.0.0.1:9/.ztp/callback/x", "http://evil.example/cb", "http://127.0.0.1:9/.ztp/callback?x=1"} {
		cfg := *e.oauth
		cfg.RedirectURL = ru
		f := newFlow()
		pg := fetch(t, browser(t), http.MethodGet, (&env{oauth: &cfg}).authURL(f), nil)
		if pg.status != http.StatusBadRequest || pg.location != nil || strings.Contains(pg.body, `id="submit"`) {
			t.Errorf("redirect_uri %q: got %d Location=%v", ru, pg.status, pg.location)
		}
	}
	cfg := *e.oauth
	cfg.ClientID = "unknown-client"
	pg := fetch(t, browser(t), http.MethodGet, (&env{oauth: &cfg}).authURL(newFlow()), nil)
	if pg.status != http.StatusBadRequest || pg.location != nil {
		t.Errorf("unknown client: got %d Location=%v", pg.status, pg.location)
	}
}

func TestSessionSingleSignOnAndPrompts(t *testing.T) {
	e := start(t)
	c := browser(t)
	e.signIn(t, c, newFlow(), "alice", "alice-pw")

	// A second sign-in in the same browser completes without the form.
	f := newFlow()
	codeFrom(t, fetch(t, c, http.MethodGet, e.authURL(f), nil), f.state)

	// prompt=login and max_age=0 ask again.
	for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
		f := newFlow()
		loginForm(t, fetch(t, c, http.MethodGet, e.authURL(f, opt), nil))
	}
	// prompt=none without a session answers login_required.
	f = newFlow()
	pg := fetch(t, browser(t), http.MethodGet, e.authURL(f, oauth2.SetAuthURLParam("prompt", "none")), nil)
	if pg.location == nil || pg.location.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none: %d Location=%v", pg.status, pg.location)
	}
}

func TestEndSession(t *testing.T) {
	e := start(t)
	c := browser(t)
	f := newFlow()
	tok, err := e.oauth.Exchange(e.ctx, e.signIn(t, c, f, "alice", "alice-pw"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	idToken := tok.Extra("id_token").(string)
	endSession := e.p.Issuer + "/end_session?"

	// An unregistered post_logout_redirect_uri is refused.
	pg := fetch(t, c, http.MethodGet, endSession+url.Values{
		"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://evil.example/"},
	}.Encode(), nil)
	if pg.status != http.StatusBadRequest || pg.location != nil {
		t.Errorf("unregistered post_logout_redirect_uri: %d %v", pg.status, pg.location)
	}

	pg = fetch(t, c, http.MethodGet, endSession+url.Values{
		"id_token_hint": {idToken}, "post_logout_redirect_uri": {rpLoggedOut}, "state": {"bye"},
	}.Encode(), nil)
	if pg.location == nil || pg.location.String() != rpLoggedOut+"?state=bye" {
		t.Fatalf("end_session: %d Location=%v body=%s", pg.status, pg.location, pg.body)
	}
	// The client's tokens were revoked and the browser signed out.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	if _, err := e.oauth.TokenSource(e.ctx, &expired).Token(); err == nil {
		t.Error("refresh token survived logout")
	}
	loginForm(t, fetch(t, c, http.MethodGet, e.authURL(newFlow()), nil))

	// Without a client, logout ends at the provider's own page.
	pg = fetch(t, c, http.MethodGet, endSession, nil)
	if pg.final.Path != "/logged-out" || !strings.Contains(pg.body, "Signed out") {
		t.Errorf("logout without client: %d at %v", pg.status, pg.final)
	}
}

func TestRevokeUser(t *testing.T) {
	e := start(t)
	f := newFlow()
	tok, err := e.oauth.Exchange(e.ctx, e.signIn(t, browser(t), f, "alice", "alice-pw"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	e.p.RevokeUser("u-alice")
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	_, err = e.oauth.TokenSource(e.ctx, &expired).Token()
	var re *oauth2.RetrieveError
	if !asRetrieve(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh after RevokeUser: %v, want invalid_grant", err)
	}
}

func TestAddressAndConfigValidation(t *testing.T) {
	good := Config{Users: testUsers, Clients: []Client{{ID: "c", Secret: "s", RedirectURIs: []string{rpCallback}}}}
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.168.1.10:0", "10.0.0.1:8080", "example.com:80", "127.0.0.1"} {
		cfg := good
		cfg.Addr = addr
		if p, err := Start(cfg); err == nil {
			p.Close()
			t.Errorf("Start(%q) succeeded; want refusal", addr)
		}
	}
	cfg := good
	cfg.Addr = "localhost:0"
	p, err := Start(cfg)
	if err != nil {
		t.Fatalf("localhost: %v", err)
	}
	if !strings.HasPrefix(p.Issuer, "http://127.0.0.1:") {
		t.Errorf("localhost issuer = %q", p.Issuer)
	}
	p.Close()

	for name, mut := range map[string]func(*Config){
		"no users":           func(c *Config) { c.Users = nil },
		"duplicate username": func(c *Config) { c.Users = []User{testUsers[0], {Sub: "x", Username: "alice", Password: "p"}} },
		"no password":        func(c *Config) { c.Users = []User{{Sub: "x", Username: "x"}} },
		"no clients":         func(c *Config) { c.Clients = nil },
		"no secret":          func(c *Config) { c.Clients = []Client{{ID: "c", RedirectURIs: []string{rpCallback}}} },
		"relative redirect":  func(c *Config) { c.Clients = []Client{{ID: "c", Secret: "s", RedirectURIs: []string{"/cb"}}} },
	} {
		cfg := good
		cfg.Addr = "127.0.0.1:0"
		mut(&cfg)
		if p, err := Start(cfg); err == nil {
			p.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

func TestStartupTime(t *testing.T) {
	const n = 5
	var total, worst time.Duration
	for range n {
		t0 := time.Now()
		p, err := Start(Config{Addr: "127.0.0.1:0", Users: testUsers, Clients: []Client{{ID: "c", Secret: "s", RedirectURIs: []string{rpCallback}}}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
		d := time.Since(t0)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("discovery: %v %v", resp, err)
		}
		resp.Body.Close()
		p.Close()
		total += d
		worst = max(worst, d)
	}
	t.Logf("start-up to first discovery answer: mean %v, worst %v over %d starts", total/n, worst, n)
	if worst > 5*time.Second {
		t.Errorf("start-up took %v", worst)
	}
}

func TestSeveralTabsAndCSRF(t *testing.T) {
	e := start(t)
	c := browser(t)
	// Two tabs open the form before either signs in; both then succeed.
	f1, f2 := newFlow(), newFlow()
	pg1 := fetch(t, c, http.MethodGet, e.authURL(f1), nil)
	pg2 := fetch(t, c, http.MethodGet, e.authURL(f2), nil)
	codeFrom(t, login(t, c, pg1, "alice", "alice-pw"), f1.state)
	codeFrom(t, login(t, c, pg2, "alice", "alice-pw"), f2.state)

	// A post from another site's page carries no CSRF cookie and is refused.
	f3 := newFlow()
	pg3 := fetch(t, browser(t), http.MethodGet, e.authURL(f3), nil)
	v := loginForm(t, pg3)
	v.Set("username", "alice")
	v.Set("password", "alice-pw")
	res := fetch(t, browser(t), http.MethodPost, e.p.Issuer+"/login", v)
	if res.status != http.StatusForbidden || res.location != nil {
		t.Errorf("cross-site login post: %d %v", res.status, res.location)
	}
	if h := res.body; !strings.Contains(h, "NOT for production") {
		t.Error("refusal page lacks the banner")
	}
}
