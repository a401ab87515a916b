//go:build !ztproxy_nodemo

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/certs"
	"ztproxy/internal/demo/op"
	"ztproxy/internal/testenv"
)

// TestBrowserSessionLifetime: a session ends at its lifetime, and a replay
// of its cookie is refused after that.
func TestBrowserSessionLifetime(t *testing.T) {
	e := newBrowserEnv(t, testenv.OIDCOptions{}, "3s")
	c := e.client(t)
	resp := e.op.Login(t, c, e.base+"/hello", e.op.User(t, "alice"), false)
	if body := readBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	time.Sleep(3500 * time.Millisecond)
	r2, err := noFollow(c).Get(e.base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusFound || !strings.Contains(r2.Header.Get("Location"), "/.ztp/login") {
		t.Fatalf("expired session: %d %s", r2.StatusCode, r2.Header.Get("Location"))
	}
}

// TestBrowserDeviceBinding: a session created with a client certificate
// is refused from a connection with another certificate or none.
func TestBrowserDeviceBinding(t *testing.T) {
	e := newBrowserEnv(t, testenv.OIDCOptions{}, "1h")
	other := filepath.Join(t.TempDir(), "other")
	if err := certs.IssueClient(filepath.Join(e.certDir, "ca.pem"), filepath.Join(e.certDir, "ca-key.pem"),
		other+".pem", other+"-key.pem", "spiffe://ztproxy.dev/device/other", "other", time.Hour); err != nil {
		t.Fatal(err)
	}
	laptop := e.client(t)
	laptop.Transport = tlsClient(t, e.certDir, true).Transport
	resp := e.op.Login(t, laptop, e.base+"/hello", e.op.User(t, "alice"), false)
	if body := readBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("sign-in with device: %d %s", resp.StatusCode, body)
	}
	u, _ := url.Parse(e.base)
	var cookieHeader []string
	for _, ck := range laptop.Jar.Cookies(u) {
		cookieHeader = append(cookieHeader, ck.Name+"="+ck.Value)
	}
	replay := func(c *http.Client) int {
		req, _ := http.NewRequest("GET", e.base+"/hello", nil)
		req.Header.Set("Cookie", strings.Join(cookieHeader, "; "))
		resp, err := noFollow(c).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := replay(tlsClient(t, e.certDir, true)); st != 200 {
		t.Fatalf("same device: %d", st)
	}
	if st := replay(tlsClient(t, e.certDir, false)); st != http.StatusFound {
		t.Fatalf("no certificate: %d", st)
	}
	otherClient := tlsClient(t, e.certDir, false)
	otherClient.Transport.(*http.Transport).TLSClientConfig.Certificates = nil
	cert, err := loadKeyPair(other+".pem", other+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	otherClient.Transport.(*http.Transport).TLSClientConfig.Certificates = cert
	if st := replay(otherClient); st != http.StatusFound {
		t.Fatalf("another device: %d", st)
	}
}

// TestBrowserRefresh uses the embedded OP with 2-second tokens: the proxy
// refreshes them server-side on later requests; when the IdP revokes the
// user's grant, the refresh gets invalid_grant and the session ends.
func TestBrowserRefresh(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatal(out)
	}
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := "https://localhost:" + strings.Split(public, ":")[1]
	provider, err := op.Start(op.Config{
		Addr:  "127.0.0.1:0",
		Users: []op.User{{Sub: "alice", Username: "alice", Email: "alice@ztp.test", Password: "pw-alice-123", Groups: []string{"eng"}}},
		Clients: []op.Client{{ID: "ztproxy", Secret: "refresh-test-secret", RedirectURIs: []string{base + "/.ztp/callback"},
			PostLogoutRedirectURIs: []string{base + "/.ztp/signed-out"}}},
		AccessTokenTTL: 2 * time.Second, IDTokenTTL: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { provider.Close() })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hi "+r.Header.Get("X-Ztp-Email"))
	}))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), browserPolicies)
	writeFile(t, filepath.Join(dir, "z.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, client_id: ztproxy, client_secret: refresh-test-secret, scopes: [openid, email, profile, groups, offline_access]}
session: {secrets: ["0123456789abcdef0123456789abcdef"]}
store: {path: state.db}
routes:
  - {name: app, host: localhost, upstream: %q, auth: browser}
`, public, admin, base, provider.Issuer, up.URL))
	p := startServe(t, filepath.Join(dir, "z.yaml"), admin, public)
	c := (&browserEnv{certDir: certDir}).client(t)
	resp, body := signInDemo(t, c, base+"/hello", "alice", "pw-alice-123")
	if resp.StatusCode != 200 || body != "hi alice@ztp.test" {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	time.Sleep(2500 * time.Millisecond) // the ID token has expired
	for i := 0; i < 3; i++ {
		resp, err := noFollow(c).Get(base + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != 200 || len(resp.Header.Values("Set-Cookie")) == 0 {
			t.Fatalf("request %d after expiry: %d (cookies %v) %s", i, resp.StatusCode, resp.Header.Values("Set-Cookie"), body)
		}
	}
	if strings.Contains(p.output(), "token refresh failed") || !strings.Contains(p.output(), "session tokens refreshed") {
		t.Fatalf("refresh failed:\n%s", p.output())
	}
	provider.RevokeUser("alice")
	time.Sleep(2500 * time.Millisecond)
	r2, err := noFollow(c).Get(base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusFound || !strings.Contains(r2.Header.Get("Location"), "/.ztp/login") {
		t.Fatalf("after the IdP revoked the grant: %d %s\n%s", r2.StatusCode, r2.Header.Get("Location"), p.output())
	}
	// Issue 22.5: the audit line says the IdP refused the refresh.
	waitFor(t, 5*time.Second, "the refresh_refused audit line", func() bool { return strings.Contains(p.output(), `"error":"refresh_refused"`) })
}
