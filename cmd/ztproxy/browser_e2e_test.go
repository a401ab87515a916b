package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

const browserPolicies = `
@id("eng-uses-app")
@reason("the app is for engineers")
permit (principal, action, resource == Route::"app") when { principal in Group::"eng" };
`

type browserEnv struct {
	base, certDir string
	op            *testenv.OIDCProvider
	mu            sync.Mutex
	seen          []http.Header
	proc          *proc
	configPath    string
}

func (e *browserEnv) lastSeen() http.Header {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		return nil
	}
	return e.seen[len(e.seen)-1]
}

// newBrowserEnv runs the real binary with a browser route signing in
// against the real test OP (npm oidc-provider), over TLS.
func newBrowserEnv(t *testing.T, opts testenv.OIDCOptions, lifetime string) *browserEnv {
	return newBrowserEnvWith(t, opts, lifetime, "")
}

// newBrowserEnvWith is newBrowserEnv with extra YAML lines appended to the
// routes list (each "  - {...}", using upstream %[1]q for the test app).
func newBrowserEnvWith(t *testing.T, opts testenv.OIDCOptions, lifetime, extraRoutes string) *browserEnv {
	dir := t.TempDir()
	e := &browserEnv{certDir: filepath.Join(dir, "certs")}
	if code, out := runZtproxy(t, "certs", "dev", "--out", e.certDir); code != 0 {
		t.Fatal(out)
	}
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.base = "https://" + public
	opts.Clients = []testenv.OIDCClient{{ID: "ztproxy", Secret: "browser-test-secret",
		RedirectURIs: []string{e.base + "/.ztp/callback"}, PostLogoutRedirectURIs: []string{e.base + "/.ztp/signed-out"}}}
	opts.Users = []testenv.OIDCUser{
		{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}},
		{Sub: "mallory", Email: "mallory@ztp.test", Password: "mallory-pw", Groups: []string{"sales"}},
	}
	e.op = testenv.StartOIDC(t, opts)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Header.Clone())
		e.mu.Unlock()
		io.WriteString(w, "app says hello to "+r.Header.Get("X-Ztp-Email"))
	}))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), browserPolicies)
	cfg := fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem, client_ca_file: certs/ca.pem, client_auth: request}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, client_id: ztproxy, client_secret: browser-test-secret, scopes: [openid, email, profile, groups, offline_access]}
session:
  secrets: ["0123456789abcdef0123456789abcdef"]
  lifetime: %s
  idle_timeout: %s
store: {path: state.db, revocation_cache_ttl: 1s}
routes:
  - {name: app, host: 127.0.0.1, upstream: %q, auth: browser}
`, public, admin, e.base, e.op.Issuer, lifetime, lifetime, up.URL)
	if extraRoutes != "" {
		cfg += fmt.Sprintf(extraRoutes, up.URL)
	}
	e.configPath = filepath.Join(dir, "ztproxy.yaml")
	writeFile(t, e.configPath, cfg)
	e.proc = startServe(t, e.configPath, admin, public)
	return e
}

// client is a cookie-keeping HTTPS client that trusts the dev CA.
func (e *browserEnv) client(t *testing.T) *http.Client {
	pem, err := os.ReadFile(filepath.Join(e.certDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestBrowserSignInHTTP(t *testing.T) {
	e := newBrowserEnv(t, testenv.OIDCOptions{}, "1h")
	alice := e.op.User(t, "alice")
	c := e.client(t)

	resp := e.op.Login(t, c, e.base+"/hello?x=1", alice, false)
	body := readBody(t, resp)
	if resp.StatusCode != 200 || body != "app says hello to alice@ztp.test" || resp.Request.URL.String() != e.base+"/hello?x=1" {
		t.Fatalf("after sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	h := e.lastSeen()
	if strings.Contains(h.Get("Cookie"), "_ztp_session") || h.Get("X-Ztp-Assertion") == "" {
		t.Fatalf("upstream headers: %v", h)
	}
	u, _ := url.Parse(e.base)
	var session *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "_ztp_session" {
			session = ck
		}
	}
	if session == nil || len(session.Value) > 1500 {
		t.Fatalf("session cookie missing or too large: %v", session)
	}

	t.Run("whoami", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.base+"/.ztp/whoami", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info map[string]any
		if err := json.Unmarshal([]byte(readBody(t, resp)), &info); err != nil {
			t.Fatal(err)
		}
		p := info["principal"].(map[string]any)
		if p["email"] != "alice@ztp.test" || len(info["routes"].([]any)) != 1 {
			t.Fatalf("whoami: %v", info)
		}
	})
	t.Run("denied user sees the denial page", func(t *testing.T) {
		m := e.client(t)
		resp := e.op.Login(t, m, e.base+"/hello", e.op.User(t, "mallory"), false)
		if body := readBody(t, resp); resp.StatusCode != 403 || !strings.Contains(body, `"error":"forbidden"`) {
			t.Fatalf("mallory (API client): %d %s", resp.StatusCode, body)
		}
		req, _ := http.NewRequest("GET", e.base+"/hello", nil)
		req.Header.Set("Accept", "text/html")
		resp, err := m.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != 403 || !strings.Contains(body, "Access denied") || !strings.Contains(body, "request id") ||
			resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("mallory (browser): %d %v %s", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("tampered cookie means sign-in, not 500", func(t *testing.T) {
		raw := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", e.base+"/hello", nil)
		req.Header.Set("Cookie", "_ztp_session="+session.Value[:len(session.Value)-3]+"AAA")
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "/.ztp/login") {
			t.Fatalf("tampered: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("callback state checks", func(t *testing.T) {
		raw := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport}
		for _, q := range []string{"", "?code=x", "?code=x&state=bogus", "?code=x&state=AAAAAAAAAAAAAAAAAAAAAA"} {
			resp, err := raw.Get(e.base + "/.ztp/callback" + q)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("callback%s: %d", q, resp.StatusCode)
			}
		}
	})
	t.Run("logout revokes the session", func(t *testing.T) {
		resp := e.op.Logout(t, c, e.base+"/.ztp/logout")
		body := readBody(t, resp)
		if !strings.HasPrefix(resp.Request.URL.String(), e.base+"/.ztp/signed-out") {
			t.Fatalf("after logout at %s: %s", resp.Request.URL, body)
		}
		raw := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", e.base+"/hello", nil)
		req.AddCookie(session)
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 302 {
			t.Fatalf("replayed cookie after logout: %d", resp.StatusCode)
		}
	})
}
