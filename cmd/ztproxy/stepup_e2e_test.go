package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"ztproxy/internal/testenv"
)

const stepUpPolicies = `
@id("eng-uses-app")
permit (principal, action, resource) when { principal in Group::"eng" };

@id("admin-needs-fresh-mfa")
@step_up("mfa")
@reason("the admin area needs a second factor within 15 minutes")
forbid (principal, action, resource == Route::"admin")
unless { context.auth.mfa && context.auth.age_seconds < 900 };
`

// TestBrowserStepUpViaIdP: policy asks for fresh MFA on the admin route;
// the proxy sends the user back to the real OP (prompt=login), accepts
// the return only when the OP asserts a second factor, and never loops.
func TestBrowserStepUpViaIdP(t *testing.T) {
	e := newStepUpEnv(t, "127.0.0.1", stepUpPolicies, "")
	alice := e.op.User(t, "alice")
	c := e.client(t)

	resp := e.op.Login(t, c, e.base+"/home", alice, false)
	if body := readBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("password sign-in: %d %s", resp.StatusCode, body)
	}
	// A page load of the admin route goes to the IdP again; signing in
	// with a password only is explained, not looped.
	resp = e.op.Login(t, c, e.base+"/admin/users", alice, false)
	body := readBody(t, resp)
	if resp.StatusCode != 403 || !strings.Contains(body, "second factor was needed") || !strings.HasPrefix(resp.Request.URL.String(), e.base+"/.ztp/callback") {
		t.Fatalf("step-up without MFA: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	// The original session still works for the app.
	r2, err := c.Get(e.base + "/home")
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, r2); r2.StatusCode != 200 {
		t.Fatalf("session after failed step-up: %d %s", r2.StatusCode, b)
	}
	// A blocked POST is explained with a retry link, not redirected.
	req, _ := http.NewRequest("POST", e.base+"/admin/users", strings.NewReader("x=1"))
	req.Header.Set("Accept", "text/html")
	r3, err := noFollow(c).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, r3); r3.StatusCode != 403 || !strings.Contains(b, "Verify now") || !strings.Contains(r3.Header.Get("X-Ztp-Step-Up"), "/.ztp/stepup?") {
		t.Fatalf("blocked POST: %d %s", r3.StatusCode, b)
	}
	// With the second factor the user returns to the exact URL.
	resp = e.op.Login(t, c, e.base+"/admin/users?page=2", alice, true)
	body = readBody(t, resp)
	if resp.StatusCode != 200 || body != "GET /admin/users for alice@ztp.test" || resp.Request.URL.String() != e.base+"/admin/users?page=2" {
		t.Fatalf("step-up with MFA: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
}

// newStepUpEnv runs the real binary with routes "admin" (/admin) and "app"
// on host (127.0.0.1, or localhost where WebAuthn needs a domain name),
// signing in at the real OP whose idp asks for acr urn:ztp:loa:mfa and
// max_age 0 on step-up; extra is appended to the config.
func newStepUpEnv(t *testing.T, host, policies, extra string) *browserEnv {
	dir := t.TempDir()
	e := &browserEnv{certDir: filepath.Join(dir, "certs")}
	if code, out := runZtproxy(t, "certs", "dev", "--out", e.certDir); code != 0 {
		t.Fatal(out)
	}
	port := testenv.FreePort(t)
	public := fmt.Sprintf("127.0.0.1:%d", port)
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.base = fmt.Sprintf("https://%s:%d", host, port)
	e.op = testenv.StartOIDC(t, testenv.OIDCOptions{
		Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: "stepup-secret", RedirectURIs: []string{e.base + "/.ztp/callback"}}},
		Users:   []testenv.OIDCUser{{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}}},
	})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" "+r.URL.Path+" for "+r.Header.Get("X-Ztp-Email"))
	}))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), policies)
	writeFile(t, filepath.Join(dir, "z.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - name: corp
    issuer: %q
    client_id: ztproxy
    client_secret: stepup-secret
    scopes: [openid, email, profile, groups]
    step_up: {acr_values: "urn:ztp:loa:mfa", max_age: 0s}
session: {secrets: ["0123456789abcdef0123456789abcdef"]}
store: {path: state.db, revocation_cache_ttl: 1s}
routes:
  - {name: admin, host: %s, path_prefix: /admin, upstream: %q, auth: browser}
  - {name: app, host: %s, upstream: %q, auth: browser}
%s`, public, admin, e.base, e.op.Issuer, host, up.URL, host, up.URL, extra))
	e.proc = startServe(t, filepath.Join(dir, "z.yaml"), admin, public)
	return e
}
