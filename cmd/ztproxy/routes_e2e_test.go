package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// routesEnv is the real binary with the issue 18 route options, the real
// test OP (npm oidc-provider) and an app that echoes what it received.
// The proxy is also reachable on two more ports (a TCP relay to the same
// listener) so that one host has three origins: a page on one can call
// the others cross-origin, and the session cookie (host-only, ports
// ignored) goes along.
type routesEnv struct {
	browserEnv
	apiBase, noCORSBase string
	mu                  sync.Mutex
	seen                []*http.Request
}

const routesPolicies = `
@id("eng-uses-everything")
permit (principal, action, resource) when { principal in Group::"eng" };
`

// routesPage is the app page that calls the API routes cross-origin with
// credentials; a PUT with a custom header needs a preflight.
const routesPage = `<!doctype html><title>page</title><body>page</body>`

func newRoutesEnv(t *testing.T) *routesEnv {
	dir := t.TempDir()
	e := &routesEnv{}
	e.certDir = filepath.Join(dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", e.certDir); code != 0 {
		t.Fatal(out)
	}
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.base = "https://" + public
	apiAddr, noCORSAddr := relayTo(t, public), relayTo(t, public)
	e.apiBase, e.noCORSBase = "https://"+apiAddr, "https://"+noCORSAddr
	e.op = testenv.StartOIDC(t, testenv.OIDCOptions{
		Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: "browser-test-secret",
			RedirectURIs: []string{e.base + "/.ztp/callback"}, PostLogoutRedirectURIs: []string{e.base + "/.ztp/signed-out"}}},
		Users: []testenv.OIDCUser{
			{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}},
			{Sub: "bob", Email: "bob@ztp.test", Password: "bob-pw", Groups: []string{"eng"}},
		},
	})
	up := httptest.NewServer(http.HandlerFunc(e.app))
	t.Cleanup(up.Close)
	// Several instances of one service for the hash_user route: each
	// answers with its own name.
	var sticky []string
	for i := range 6 {
		name := fmt.Sprintf("instance-%d", i)
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		t.Cleanup(s.Close)
		sticky = append(sticky, fmt.Sprintf("%q", s.URL))
	}
	writeFile(t, filepath.Join(dir, "p.cedar"), routesPolicies)
	cfg := fmt.Sprintf(`
listen: %[1]q
admin_listen: %[2]q
external_url: %[3]q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %[4]q, client_id: ztproxy, client_secret: browser-test-secret, scopes: [openid, email, profile, groups]}
session:
  secrets: ["0123456789abcdef0123456789abcdef"]
store: {path: state.db}
audit: {output: stdout}
routes:
  - {name: app, host: 127.0.0.1, upstream: %[5]q, auth: browser}
  - name: legacy
    host: 127.0.0.1
    path_prefix: /legacy
    upstream: %[5]q
    auth: browser
    prefix_rewrite: /v2
    host_rewrite: backend.internal
    max_body_bytes: 16
  - name: users
    host: 127.0.0.1
    path_prefix: /users
    upstream: %[5]q
    auth: browser
    regex_rewrite: {pattern: '^/users/([0-9]+)$', substitution: '/profiles/$1'}
  - name: limited
    host: 127.0.0.1
    path_prefix: /limited
    upstream: %[5]q
    auth: browser
    rate_limit: {requests_per_second: 0.01, burst: 3}
  - name: api
    host: %[6]q
    upstream: %[5]q
    auth: browser
    cors_preflight: allow
    request_headers:
      set: {X-Remote-User: "{{.Email}}", X-Remote-Groups: "{{.Groups}}"}
      remove: [X-Debug]
    response_headers:
      preset: security
      remove: [X-Powered-By]
  - {name: nocors, host: %[7]q, upstream: %[5]q, auth: browser}
  - {name: sticky, host: 127.0.0.1, path_prefix: /sticky, upstreams: [%[8]s], lb_policy: hash_user, auth: browser}
`, public, admin, e.base, e.op.Issuer, up.URL, apiAddr, noCORSAddr, strings.Join(sticky, ", "))
	writeFile(t, filepath.Join(dir, "ztproxy.yaml"), cfg)
	e.proc = startServe(t, filepath.Join(dir, "ztproxy.yaml"), admin, public)
	return e
}

// app is the protected application: the page, and an API that answers
// CORS for the page's origin the way an app behind the proxy would.
func (e *routesEnv) app(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.seen = append(e.seen, r.Clone(r.Context()))
	e.mu.Unlock()
	if origin := r.Header.Get("Origin"); origin == e.base {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Vary", "Origin")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "PUT")
			w.Header().Set("Access-Control-Allow-Headers", "X-Debug, Content-Type")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	w.Header().Set("X-Powered-By", "app/1.0")
	if r.URL.Path == "/page" {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, routesPage)
		return
	}
	body, _ := io.ReadAll(r.Body)
	json.NewEncoder(w).Encode(map[string]string{
		"method": r.Method, "path": r.URL.RequestURI(), "host": r.Host, "user": r.Header.Get("X-Remote-User"),
		"groups": r.Header.Get("X-Remote-Groups"), "ztp_email": r.Header.Get("X-Ztp-Email"), "debug": r.Header.Get("X-Debug"),
		"body": string(body),
	})
}

// seenMethods lists the method and path of what the app received.
func (e *routesEnv) seenMethods() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, r := range e.seen {
		out = append(out, r.Method+" "+r.URL.Path)
	}
	return out
}

// relayTo listens on a free loopback port and relays every connection to
// target byte for byte (the TLS session is the proxy's own).
func relayTo(t *testing.T, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().String()
}

// fetchJS calls url from the page with the session cookie, as a PUT with
// a custom header (so the browser sends a preflight first), and returns
// the response text or the error.
func fetchJS(url string) string {
	return fmt.Sprintf(`fetch(%q, {method: "PUT", credentials: "include", headers: {"X-Debug": "1", "Content-Type": "application/json"}, body: "{}"})
  .then(r => r.text().then(t => JSON.stringify({status: r.status, body: t})))
  .catch(e => JSON.stringify({error: String(e)}))`, url)
}

// Issue 18 (CORS preflight): real headless Chromium on the app's origin
// calls another route's host with credentials. With cors_preflight: allow
// the preflight reaches the app unauthenticated and the actual request is
// authenticated by the session cookie (the app sees the user); on a route
// without it the proxy answers the preflight 401 and the browser blocks
// the call. Header rules apply on the way in and out.
func TestE2ECORSPreflightChromium(t *testing.T) {
	e := newRoutesEnv(t)
	br := testenv.StartBrowser(t, testenv.BrowserOptions{IgnoreCertErrors: true})
	alice := e.op.User(t, "alice")
	tab := br.NewTab(t)
	tab.Navigate(t, e.base+"/page")
	tab.WaitURLPrefix(t, e.op.Issuer+"/interaction/", 10*time.Second)
	tab.LoginForm(t, alice.Sub, alice.Password, "")
	tab.WaitURLPrefix(t, e.base+"/page", 10*time.Second)

	var raw string
	tab.Eval(t, fetchJS(e.apiBase+"/items/1"), &raw)
	var got struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil || got.Status != 200 {
		t.Fatalf("cross-origin fetch with cors_preflight: %s (%v)\nthe app saw %v", raw, err, e.seenMethods())
	}
	var app map[string]string
	json.Unmarshal([]byte(got.Body), &app)
	if app["method"] != "PUT" || app["user"] != "alice@ztp.test" || app["ztp_email"] != "alice@ztp.test" || app["groups"] != "eng" || app["debug"] != "" {
		t.Errorf("the actual request as the app saw it: %v", app)
	}
	// The browser may fetch /favicon.ico in between: what counts is that
	// the preflight reached the app before the request it cleared.
	if seen := e.seenMethods(); !preflightBefore(seen, "OPTIONS /items/1", "PUT /items/1") {
		t.Errorf("the preflight did not reach the app: %v", seen)
	}
	if !e.waitOutput(`"decision":"cors_preflight"`) {
		t.Errorf("the preflight is not audited as such:\n%s", e.proc.output())
	}

	// The same call to a route without cors_preflight fails in the browser:
	// the preflight is answered 401 and nothing reaches the app.
	before := len(e.seenMethods())
	tab.Eval(t, fetchJS(e.noCORSBase+"/items/1"), &raw)
	if !strings.Contains(raw, `"error"`) || len(e.seenMethods()) != before {
		t.Errorf("cross-origin call to a route without cors_preflight: %s, app saw %v", raw, e.seenMethods()[before:])
	}
}

// Issue 18 (CORS preflight): with cors_preflight: allow, only a real
// preflight passes without a session; a plain OPTIONS still needs one.
func TestE2ECORSPreflightOnlyPreflights(t *testing.T) {
	e := newRoutesEnv(t)
	c := e.client(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("OPTIONS", e.apiBase+"/items", nil)
	req.Header.Set("Origin", e.base)
	req.Header.Set("Access-Control-Request-Method", "DELETE")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != e.base {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	for _, hdr := range []map[string]string{{}, {"Origin": e.base}, {"Access-Control-Request-Method": "DELETE"}} {
		req, _ := http.NewRequest("OPTIONS", e.apiBase+"/items", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusFound {
			t.Errorf("OPTIONS with %v: %d, want sign-in required", hdr, resp.StatusCode)
		}
	}
}

// Issue 18 (paths, hosts, body limit, rate limit) through the real
// binary with two signed-in users.
func TestE2ERouteRewritesAndLimits(t *testing.T) {
	e := newRoutesEnv(t)
	alice, bob := e.client(t), e.client(t)
	readBody(t, e.op.Login(t, alice, e.base+"/page", e.op.User(t, "alice"), false))
	readBody(t, e.op.Login(t, bob, e.base+"/page", e.op.User(t, "bob"), false))

	get := func(c *http.Client, path string) (int, map[string]string, http.Header) {
		t.Helper()
		resp, err := c.Get(e.base + path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		json.Unmarshal([]byte(readBody(t, resp)), &m)
		return resp.StatusCode, m, resp.Header
	}
	t.Run("prefix and host rewrite", func(t *testing.T) {
		status, m, _ := get(alice, "/legacy/reports/q1")
		if status != 200 || m["path"] != "/v2/reports/q1" || m["host"] != "backend.internal" {
			t.Fatalf("%d %v", status, m)
		}
		if !e.waitOutput(`"path":"/legacy/reports/q1","upstream_path":"/v2/reports/q1"`) {
			t.Errorf("audit lacks the original and the forwarded path:\n%s", e.proc.output())
		}
	})
	t.Run("header rules", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.apiBase+"/me", nil)
		req.Header.Set("X-Debug", "1")
		req.Header.Set("X-Ztp-Email", "mallory@ztp.test")
		req.Header.Set("X-Remote-User", "mallory@ztp.test")
		resp, err := alice.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		json.Unmarshal([]byte(readBody(t, resp)), &m)
		if resp.StatusCode != 200 || m["user"] != "alice@ztp.test" || m["ztp_email"] != "alice@ztp.test" || m["debug"] != "" {
			t.Fatalf("%d %v", resp.StatusCode, m)
		}
		h := resp.Header
		if h.Get("X-Powered-By") != "" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "SAMEORIGIN" ||
			!strings.HasPrefix(h.Get("Strict-Transport-Security"), "max-age=") {
			t.Fatalf("response headers: %v", h)
		}
	})
	t.Run("regex rewrite", func(t *testing.T) {
		status, m, _ := get(alice, "/users/42")
		if status != 200 || m["path"] != "/profiles/42" {
			t.Fatalf("%d %v", status, m)
		}
	})
	t.Run("route body limit", func(t *testing.T) {
		resp, err := alice.Post(e.base+"/legacy/upload", "text/plain", strings.NewReader(strings.Repeat("x", 64)))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("64-byte body on a 16-byte route: %d", resp.StatusCode)
		}
		resp, _ = alice.Post(e.base+"/legacy/upload", "text/plain", strings.NewReader("small"))
		if body := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(body, `"body":"small"`) {
			t.Fatalf("small body: %d %s", resp.StatusCode, body)
		}
	})
	// Issue 18 (several upstreams): hash_user keeps each principal on one
	// upstream of the pool, whatever the connection or the request.
	t.Run("hash_user sticks per principal", func(t *testing.T) {
		landed := func(c *http.Client) map[string]int {
			seen := map[string]int{}
			for i := range 12 {
				resp, err := c.Get(fmt.Sprintf("%s/sticky/r%d", e.base, i))
				if err != nil {
					t.Fatal(err)
				}
				body := readBody(t, resp)
				if resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				seen[body]++
				c.CloseIdleConnections() // a new connection each time: stickiness is not keep-alive
			}
			return seen
		}
		if a, b := landed(alice), landed(bob); len(a) != 1 || len(b) != 1 {
			t.Fatalf("alice landed on %v, bob on %v; want one upstream each", a, b)
		}
	})
	t.Run("rate limit per principal", func(t *testing.T) {
		for i := range 3 {
			if status, _, _ := get(alice, "/limited/x"); status != 200 {
				t.Fatalf("alice request %d: %d", i, status)
			}
		}
		status, _, h := get(alice, "/limited/x")
		if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
			t.Fatalf("alice over her rate: %d Retry-After %q", status, h.Get("Retry-After"))
		}
		if status, _, _ := get(bob, "/limited/x"); status != 200 {
			t.Fatalf("bob while alice is limited: %d", status)
		}
		if !e.waitOutput(`"error":"rate_limited"`) {
			t.Errorf("the 429 is not audited with its code")
		}
	})
}

// waitOutput waits up to 5 s for substr in the proxy's output (the audit
// writer batches).
func (e *routesEnv) waitOutput(substr string) bool { return waitForOutput(e.proc, substr) }

// Issue 18: check-config explains every mistake in the new route options
// with its YAML path.
func TestCheckConfigRouteOptions(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
	writeFile(t, filepath.Join(dir, "bad.yaml"), `
listen: "127.0.0.1:8443"
admin_listen: "127.0.0.1:9443"
external_url: "http://127.0.0.1:8443"
insecure_plaintext: true
policies: [p.cedar]
routes:
  - name: a
    host: app.example.com
    upstream: "http://127.0.0.1:1"
    auth: public
    cors_preflight: yes-please
    strip_prefix: true
    path_prefix: /a
    prefix_rewrite: /v2
    regex_rewrite: {pattern: '(a', substitution: "/x"}
    host_rewrite: "bad host"
    request_headers:
      set: {X-Ztp-User: admin, X-Name: "{{.Password}}", X-Crlf: "a\r\nb", Host: x}
      remove: [Transfer-Encoding]
      preset: security
    response_headers: {preset: strict}
    max_body_bytes: -1
    connect_timeout: -1s
    rate_limit: {requests_per_second: 0, burst: 0}
  - name: b
    host: app.example.com
    path_prefix: /b
    upstream: "http://127.0.0.1:1"
    upstreams: ["http://127.0.0.1:2"]
    auth: public
  - name: c
    host: app.example.com
    path_prefix: /c
    upstreams: ["http://127.0.0.1:2", "https://127.0.0.1:3", "http://127.0.0.1:4/x"]
    lb_policy: fastest
    health_check: {interval: 10ms}
    outlier_detection: {consecutive_failures: -1}
    auth: public
  - name: d
    host: app.example.com
    path_prefix: /d
    upstream: "http://127.0.0.1:1"
    lb_policy: round_robin
    grpc: true
    auth: public
`)
	code, out := runZtproxy(t, "check-config", "--config", filepath.Join(dir, "bad.yaml"))
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"routes[0].cors_preflight", "routes[0].prefix_rewrite", "routes[0].regex_rewrite.pattern", "routes[0].host_rewrite",
		"routes[0].request_headers.set.X-Ztp-User", "routes[0].request_headers.set.X-Name", "routes[0].request_headers.set.X-Crlf",
		"routes[0].request_headers.set.Host", "routes[0].request_headers.remove[0]", "routes[0].request_headers.preset",
		"routes[0].response_headers.preset", "routes[0].max_body_bytes", "routes[0].connect_timeout",
		"routes[0].rate_limit.requests_per_second", "routes[0].rate_limit.burst",
		"routes[1].upstreams", "routes[2].upstreams[1]", "routes[2].upstreams[2]", "routes[2].lb_policy",
		"routes[2].health_check.path", "routes[2].health_check.interval", "routes[2].outlier_detection",
		"routes[3].lb_policy", "routes[3].upstream",
	} {
		if !strings.Contains(out, want+":") && !strings.Contains(out, want+" ") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// preflightBefore reports whether preflight occurs in seen before the last
// occurrence of actual.
func preflightBefore(seen []string, preflight, actual string) bool {
	pi, ai := slices.Index(seen, preflight), -1
	for i, s := range seen {
		if s == actual {
			ai = i
		}
	}
	return pi >= 0 && ai > pi
}
