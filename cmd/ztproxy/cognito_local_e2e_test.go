package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// cognitoPolicies: /api for the user named ada in group eng, /open for any
// bearer caller.
const cognitoPolicies = `
@id("ada-only") permit (principal, action, resource == Route::"api")
when { context.identity.username == "ada" && principal in Group::"eng" };
@id("open") permit (principal, action, resource) when { resource != Route::"api" };
`

// TestE2ECognitoLocalTokens: the documented Cognito bearer setup against
// cognito-local's real Cognito token shapes.
// Issue 21.1: context.identity.username (username in access tokens,
// cognito:username in ID tokens) reaches policy; token_use decides whether
// client_id stands in for aud, other pools and clients are refused.
func TestE2ECognitoLocalTokens(t *testing.T) {
	cl := testenv.StartCognitoLocal(t)
	pool := cl.CreateUserPool(t, "staff")
	cli := cl.CreateAppClient(t, pool, "reports-cli")
	otherClient := cl.CreateAppClient(t, pool, "someone-else")
	cl.CreateUser(t, pool, testenv.CognitoUser{Username: "ada", Password: "Passw0rd!", Email: "ada@corp.test", Groups: []string{"eng"}})
	cl.CreateUser(t, pool, testenv.CognitoUser{Username: "adam", Password: "Passw0rd!", Email: "adam@corp.test", Groups: []string{"eng"}})
	otherPool := cl.CreatePoolWithUser(t, "partners", "ada")

	idp := func(tokenUse string) string {
		return fmt.Sprintf("idps:\n  - {name: cognito, issuer: %q, audiences: [%q], token_use: %q, groups_claim: \"cognito:groups\"}\n",
			cl.Issuer(pool), cli, tokenUse)
	}
	access := newIdPEnvWith(t, cognitoPolicies, idp("access"))
	ada := cl.SignIn(t, cli, "ada", "Passw0rd!")
	if st, body := access.call(t, "/api/x", ada.AccessToken); st != http.StatusOK || body != "upstream /api/x email=" {
		t.Errorf("ada's access token: %d %s, want 200 (and no email: access tokens have none)", st, body)
	}
	adam := cl.SignIn(t, cli, "adam", "Passw0rd!")
	if st, body := access.call(t, "/api/x", adam.AccessToken); st != http.StatusForbidden {
		t.Errorf("adam's access token on ada's route: %d %s, want 403", st, body)
	}
	refused := []struct{ name, token, desc string }{
		{"ID token where access is required", ada.IDToken, "token is not accepted"},
		{"another app client", cl.SignIn(t, otherClient, "ada", "Passw0rd!").AccessToken, "token is not accepted"},
		// cognito-local signs every pool with one key: only iss differs.
		{"another user pool", otherPool.AccessToken, "untrusted issuer"},
	}
	for _, tt := range refused {
		if st, body := access.call(t, "/open/x", tt.token); st != http.StatusUnauthorized || !strings.Contains(body, tt.desc) {
			t.Errorf("%s: %d %s, want 401 %q", tt.name, st, body, tt.desc)
		}
	}
	id := newIdPEnvWith(t, cognitoPolicies, idp("id"))
	if st, body := id.call(t, "/api/x", ada.IDToken); st != http.StatusOK || body != "upstream /api/x email=ada@corp.test" {
		t.Errorf("ada's ID token with token_use id: %d %s", st, body)
	}
	if st, _ := id.call(t, "/open/x", ada.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("access token with token_use id: %d, want 401", st)
	}
}

// TestE2ECognitoLocalNoUserinfo: cognito-local, like a user pool without a
// domain, publishes no userinfo endpoint. Enrichment then fails as
// configured, and says why.
func TestE2ECognitoLocalNoUserinfo(t *testing.T) {
	cl := testenv.StartCognitoLocal(t)
	pool := cl.CreateUserPool(t, "staff")
	cli := cl.CreateAppClient(t, pool, "reports-cli")
	cl.CreateUser(t, pool, testenv.CognitoUser{Username: "ada", Password: "Passw0rd!", Email: "ada@corp.test", Groups: []string{"eng"}})
	e := newIdPEnvWith(t, cognitoPolicies, fmt.Sprintf(
		"idps:\n  - {name: cognito, issuer: %q, audiences: [%q], token_use: access, groups_claim: \"cognito:groups\", userinfo: {}}\n", cl.Issuer(pool), cli))
	st, body := e.call(t, "/open/x", cl.SignIn(t, cli, "ada", "Passw0rd!").AccessToken)
	if st != http.StatusUnauthorized || !strings.Contains(body, "identity provider userinfo unavailable") {
		t.Errorf("enrichment without a userinfo endpoint (deny): %d %s", st, body)
	}
	waitFor(t, 5*time.Second, "a log line naming the missing userinfo_endpoint", func() bool {
		return strings.Contains(e.proc.output(), "names no userinfo_endpoint; set userinfo.url")
	})
}

// TestE2ECognitoLocalNoDomainSignIn: a user pool without a domain has no
// authorization_endpoint in its discovery document.
// Issue 21.4: /.ztp/login then redirected to "?client_id=…" on the proxy
// (404); now it is a clear 502 page naming what is missing, and
// check-config --online says the same.
func TestE2ECognitoLocalNoDomainSignIn(t *testing.T) {
	cl := testenv.StartCognitoLocal(t)
	pool := cl.CreateUserPool(t, "staff")
	web := cl.CreateAppClient(t, pool, "ztproxy", "http://127.0.0.1/.ztp/callback")
	idps := fmt.Sprintf("idps:\n  - {name: cognito, issuer: %q, audiences: [%q], client_id: %q, client_secret: not-checked, groups_claim: \"cognito:groups\"}\n", cl.Issuer(pool), web, web)
	e := newIdPEnvWith(t, cognitoPolicies, idps+"session: {secrets: [\"0123456789abcdef0123456789abcdef\"]}\n")
	c := testenv.NewBrowserClient(t)
	req, _ := http.NewRequest(http.MethodGet, e.base+"/app/page", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadGateway || resp.Request.URL.Path != "/.ztp/login" ||
		!strings.Contains(body, "Identity provider not set up for sign-in") || !strings.Contains(body, "no authorization_endpoint") ||
		!strings.Contains(body, "needs a domain") {
		t.Errorf("sign-in at a pool without a domain ended at %s: %d\n%s", resp.Request.URL, resp.StatusCode, body)
	}

	cfg := writeBrowserConfig(t, idps)
	if code, out := runZtproxy(t, "check-config", "--config", cfg); code != 0 || strings.Contains(out, "online:") {
		t.Errorf("check-config (offline) on a valid file: exit %d\n%s", code, out)
	}
	code, out := runZtproxy(t, "check-config", "--config", cfg, "--online")
	if code != 1 || !strings.Contains(out, "online: idps[0] cognito") || !strings.Contains(out, "problem: the discovery document has no authorization_endpoint") ||
		!strings.Contains(out, "problem: the discovery document has no token_endpoint") {
		t.Errorf("check-config --online: exit %d\n%s", code, out)
	}
}

// TestE2ECheckConfigOnline: check-config stays offline unless asked;
// --online fetches discovery and keys for every IdP and names what is
// missing (issue 21.4).
func TestE2ECheckConfigOnline(t *testing.T) {
	idp := testenv.StartHostileIdP(t, testenv.NewRSASigningKey(t, "k1", 0))
	cfg := writeBrowserConfig(t, fmt.Sprintf("idps:\n  - {name: corp, issuer: %q, audiences: [api], client_id: ztproxy, client_secret: s, userinfo: {}}\n", idp.Issuer))
	if code, out := runZtproxy(t, "check-config", "--config", cfg); code != 0 {
		t.Fatalf("check-config: exit %d\n%s", code, out)
	}
	if n := idp.DiscoveryFetches() + idp.JWKSFetches(); n != 0 {
		t.Errorf("check-config without --online made %d requests to the IdP", n)
	}
	code, out := runZtproxy(t, "check-config", "--config", cfg, "--online")
	want := fmt.Sprintf("online: idps[0] corp (%s): OK: discovery OK, 1 signing key(s) at %s, sign-in via %s/authorize, userinfo at %s",
		idp.Issuer, idp.JWKSURL(), idp.Issuer, idp.UserinfoURL())
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("check-config --online: exit %d\n%s\nwant %s", code, out, want)
	}
	idp.EditDiscovery(func(doc map[string]any) { delete(doc, "userinfo_endpoint") })
	idp.SetJWKSDown(true)
	code, out = runZtproxy(t, "check-config", "--config", cfg, "--online")
	if code != 1 || !strings.Contains(out, "problem: userinfo is configured, but the discovery document has no userinfo_endpoint") ||
		!strings.Contains(out, "problem: the JWKS cannot be used") {
		t.Errorf("check-config --online with a broken IdP: exit %d\n%s", code, out)
	}
}

// writeBrowserConfig writes a config with one browser route and idps (a
// YAML block) for check-config, and returns its path.
func writeBrowserConfig(t *testing.T, idps string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ztproxy.yaml")
	writeFile(t, filepath.Join(dir, "p.cedar"), cognitoPolicies)
	writeFile(t, cfg, fmt.Sprintf(`listen: 127.0.0.1:%d
admin_listen: 127.0.0.1:%d
external_url: http://127.0.0.1:%d
insecure_plaintext: true
policies: [p.cedar]
store: {path: %s}
routes:
  - {name: app, host: 127.0.0.1, upstream: "http://127.0.0.1:1", auth: browser}
session: {secrets: ["0123456789abcdef0123456789abcdef"]}
%s`, testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t), filepath.Join(dir, "state.db"), idps))
	return cfg
}
