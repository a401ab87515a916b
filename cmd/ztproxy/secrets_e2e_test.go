package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// secretsEnv is the real binary with a browser route signing in against
// the test OP (npm oidc-provider), its secrets configured by the test.
type secretsEnv struct {
	dir, base, certDir string
	op                 *testenv.OIDCProvider
	proc               *proc
}

// newSecretsEnv starts the OP with a client whose secret is clientSecret,
// and serve with the given idp secret and session blocks.
func newSecretsEnv(t *testing.T, clientSecret, idpSecret, session string) *secretsEnv {
	t.Helper()
	dir := t.TempDir()
	e := &secretsEnv{dir: dir, certDir: filepath.Join(dir, "certs")}
	if code, out := runZtproxy(t, "certs", "dev", "--out", e.certDir); code != 0 {
		t.Fatal(out)
	}
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.base = "https://" + public
	e.op = testenv.StartOIDC(t, testenv.OIDCOptions{
		Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: clientSecret, RedirectURIs: []string{e.base + "/.ztp/callback"}}},
		Users:   []testenv.OIDCUser{{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}}},
	})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app says hello to "+r.Header.Get("X-Ztp-Email"))
	}))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), browserPolicies)
	writeFile(t, filepath.Join(dir, "ztproxy.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - name: corp
    issuer: %q
    client_id: ztproxy
    %s
    scopes: [openid, email, profile, groups]
%s
store: {path: state.db}
routes:
  - {name: app, host: 127.0.0.1, upstream: %q, auth: browser}
`, public, admin, e.base, e.op.Issuer, idpSecret, session, up.URL))
	e.proc = startServe(t, filepath.Join(dir, "ztproxy.yaml"), admin, public)
	return e
}

// signIn signs alice in and returns her cookie-keeping client.
func (e *secretsEnv) signIn(t *testing.T) *http.Client {
	t.Helper()
	c := (&browserEnv{certDir: e.certDir}).client(t)
	resp := e.op.Login(t, c, e.base+"/hello", e.op.User(t, "alice"), false)
	if body := readBody(t, resp); resp.StatusCode != 200 || body != "app says hello to alice@ztp.test" {
		t.Fatalf("sign-in: %d at %s: %s\n%s", resp.StatusCode, resp.Request.URL, body, e.proc.output())
	}
	return c
}

// status is the status of GET /hello with c's cookies, without following
// a redirect to sign-in.
func (e *secretsEnv) status(t *testing.T, c *http.Client) int {
	t.Helper()
	raw := &http.Client{Jar: c.Jar, Transport: c.Transport, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := raw.Get(e.base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReloads waits for the reload counter of result to reach n (the
// start counts as one success).
func (e *secretsEnv) waitReloads(t *testing.T, result string, n int) {
	t.Helper()
	want := fmt.Sprintf(`ztproxy_config_reloads_total{result=%q} %d`, result, n)
	waitFor(t, 15*time.Second, want, func() bool { return strings.Contains(e.proc.metrics(t), want) })
}

// TestSecretFilesSignIn: issue 12.12. Secrets come from mounted files:
// the real binary signs a user in with idps[].client_secret_file, seals
// the session with keys from session.secrets_file, and re-reads a rotated
// secrets file on reload (newest first; dropping the old key ends the
// sessions it sealed; an empty file is refused and the last good keys keep
// serving).
func TestSecretFilesSignIn(t *testing.T) {
	keyOld, keyNew := strings.Repeat("o", 32), strings.Repeat("n", 32)
	dir := t.TempDir()
	// writeFile replaces a file atomically, mode 0600, as a Kubernetes
	// secret volume update does.
	clientFile, sessionFile := filepath.Join(dir, "client-secret"), filepath.Join(dir, "session-secrets")
	writeFile(t, clientFile, "file-client-secret\n")
	writeFile(t, sessionFile, keyOld+"\n")
	e := newSecretsEnv(t, "file-client-secret",
		fmt.Sprintf("client_secret_file: %q", clientFile),
		fmt.Sprintf("session: {secrets_file: %q}", sessionFile))
	c := e.signIn(t)

	writeFile(t, sessionFile, keyNew+"\n"+keyOld+"\n")
	e.waitReloads(t, "success", 2)
	if got := e.status(t, c); got != 200 {
		t.Fatalf("after adding a new key: %d, want 200 (the old key still opens sessions)", got)
	}
	c2 := e.signIn(t) // sealed with the new key

	writeFile(t, sessionFile, keyNew+"\n")
	e.waitReloads(t, "success", 3)
	if got := e.status(t, c); got != 302 {
		t.Fatalf("after dropping the old key: %d, want 302 to sign-in", got)
	}
	if got := e.status(t, c2); got != 200 {
		t.Fatalf("a session sealed with the new key: %d, want 200", got)
	}

	writeFile(t, sessionFile, "")
	e.waitReloads(t, "failure", 1)
	if got := e.status(t, c2); got != 200 {
		t.Fatalf("after an empty secrets file: %d, want 200 (the last good keys keep serving)", got)
	}
	if !strings.Contains(e.proc.output(), "session.secrets_file") || strings.Contains(e.proc.output(), keyNew) {
		t.Errorf("the rejected reload does not name session.secrets_file, or logs a secret:\n%s", e.proc.output())
	}
}

// TestEnvSecretIsNotReparsed: issue 12.12 through the real binary. A
// client secret holding YAML escape syntax and a quote, given through
// "${VAR}" in a double-quoted value, reached the IdP unescaped ("\x41"
// became "A"), so sign-in failed. Values are now expanded after parsing.
func TestEnvSecretIsNotReparsed(t *testing.T) {
	secret := `s3cr\x41t"\n`
	t.Setenv("ZTP_E2E_CLIENT_SECRET", secret)
	t.Setenv("ZTP_E2E_SESSION_SECRET", strings.Repeat("k", 32))
	e := newSecretsEnv(t, secret, `client_secret: "${ZTP_E2E_CLIENT_SECRET}"`,
		`session: {secrets: ["${ZTP_E2E_SESSION_SECRET}"]}  # ${ZTP_E2E_NOT_SET} in a comment is not required`)
	e.signIn(t)
	if strings.Contains(e.proc.output(), secret) {
		t.Errorf("the client secret was logged:\n%s", e.proc.output())
	}
}

// TestCheckConfigNotesWhatItCannotProve: check-config against the config
// of a running serve still says OK (nothing in the file is wrong), and its
// notes say what would stop a second serve: the ports and the store are
// taken. That second serve fails, naming the same things.
func TestCheckConfigNotesWhatItCannotProve(t *testing.T) {
	dir := t.TempDir()
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	writeFile(t, filepath.Join(dir, "c.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "http://%s"
insecure_plaintext: true
idps: [{name: corp, issuer: "https://idp.example.com", audiences: [api]}]
policies: [p.cedar]
store: {path: state.db}
routes:
  - {name: api, host: 127.0.0.1, upstream: "http://127.0.0.1:1", auth: bearer}
`, public, admin, public))
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
	cfg := filepath.Join(dir, "c.yaml")

	code, out := runZtproxy(t, "check-config", "--config", cfg)
	for _, want := range []string{": OK (1 routes, 1 policy files)", "note: listen (line 2): " + public + " is free now",
		"note: store.path (line 8): " + filepath.Join(dir, "state.db") + " is free now",
		"note: idps[0].issuer (line 6): https://idp.example.com is not contacted"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("check-config before serve: exit %d, want %q in:\n%s", code, want, out)
		}
	}
	startServe(t, cfg, admin, public)
	code, out = runZtproxy(t, "check-config", "--config", cfg)
	for _, want := range []string{": OK (1 routes, 1 policy files)",
		"note: listen (line 2): " + public + " cannot be bound now",
		"note: admin_listen (line 3): " + admin + " cannot be bound now",
		"note: store.path (line 8): " + filepath.Join(dir, "state.db") + " is held by another process now"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("check-config while serve runs: exit %d, want %q in:\n%s", code, want, out)
		}
	}
	code, out = runZtproxy(t, "serve", "--config", cfg)
	if code != 1 || !strings.Contains(out, "store.path (line 8): opening") || !strings.Contains(out, "locked by another process") {
		t.Fatalf("a second serve: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err != nil {
		t.Fatal(err)
	}
}
