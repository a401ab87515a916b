package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

const nginxPolicies = `
@id("eng-uses-api")
permit (principal, action, resource == Route::"api") when { principal in Group::"eng" };

@id("admins-only")
permit (principal, action, resource == Route::"admin") when { principal in Group::"admins" };

@id("eng-uses-app")
permit (principal, action, resource == Route::"app") when { principal in Group::"eng" };
`

// nginxEnv is the shipped examples/nginx/nginx.conf on a real nginx, in
// front of a recording upstream, with the real ztproxy binary as the
// verifier and the real test OP for sign-in and tokens.
type nginxEnv struct {
	base     string // nginx, the public origin
	ztproxy  string // ztproxy's listener (host:port)
	op       *testenv.OIDCProvider
	proc     *proc
	errorLog string

	mu   sync.Mutex
	seen []http.Header
}

func (e *nginxEnv) lastSeen() http.Header {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		return nil
	}
	return e.seen[len(e.seen)-1]
}

func (e *nginxEnv) seenCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen)
}

// nginxBinary finds Debian's nginx: t.Fatal under CI=true when missing,
// t.Skip otherwise.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/usr/sbin/nginx"); err == nil && !fi.IsDir() {
		return "/usr/sbin/nginx"
	}
	p, err := exec.LookPath("nginx")
	testenv.RequireComponent(t, "nginx", err)
	return p
}

func newNginxEnv(t *testing.T) *nginxEnv {
	nginx := nginxBinary(t)
	dir := t.TempDir()
	e := &nginxEnv{}
	nginxAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.base = "http://" + nginxAddr
	e.ztproxy = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))

	users := append(testenv.DefaultOIDCUsers(), testenv.OIDCUser{Sub: "mallory", Email: "mallory@ztp.test", Password: "mallory-pw", Groups: []string{"sales"}})
	e.op = testenv.StartOIDC(t, testenv.OIDCOptions{
		Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: "nginx-test-secret",
			RedirectURIs: []string{e.base + "/.ztp/callback"}, PostLogoutRedirectURIs: []string{e.base + "/.ztp/signed-out"}}},
		Users: users,
	})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Header.Clone())
		e.mu.Unlock()
		io.WriteString(w, "app says hello to "+r.Header.Get("X-Ztp-Email"))
	}))
	t.Cleanup(up.Close)

	writeFile(t, filepath.Join(dir, "p.cedar"), nginxPolicies)
	writeFile(t, filepath.Join(dir, "ztproxy.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
insecure_plaintext: true
trusted_proxies: [127.0.0.1]
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, client_id: ztproxy, client_secret: nginx-test-secret, audiences: [ztproxy], scopes: [openid, email, profile, groups, offline_access]}
session:
  secrets: ["0123456789abcdef0123456789abcdef"]
store: {path: state.db}
routes:
  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: %q, auth: bearer}
  - {name: admin, host: 127.0.0.1, path_prefix: /admin, upstream: %q, auth: bearer}
  - {name: app, host: 127.0.0.1, upstream: %q, auth: browser}
`, e.ztproxy, admin, e.base, e.op.Issuer, up.URL, up.URL, up.URL))
	e.proc = startServe(t, filepath.Join(dir, "ztproxy.yaml"), admin, e.ztproxy)

	e.errorLog = filepath.Join(dir, "error.log")
	startNginx(t, nginx, dir, nginxConfig(t, dir, nginxAddr, strings.TrimPrefix(up.URL, "http://"), e.ztproxy), nginxAddr)
	return e
}

// nginxConfig is examples/nginx/nginx.conf with only addresses and file
// paths changed. Each substitution must apply exactly once, so an edit to
// the example that this test no longer understands fails loudly.
func nginxConfig(t *testing.T, dir, listen, app, ztproxy string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "nginx", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	temp := ""
	for _, kind := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		temp += fmt.Sprintf("    %s_temp_path %s;\n", kind, filepath.Join(dir, "tmp", kind))
	}
	for _, r := range []struct{ old, new string }{
		{"error_log /var/log/nginx/error.log;", "error_log " + filepath.Join(dir, "error.log") + " info;"},
		{"access_log /var/log/nginx/access.log;", "access_log " + filepath.Join(dir, "access.log") + ";"},
		{"server 127.0.0.1:8080;", "server " + app + ";"},
		{"server 127.0.0.1:9000;", "server " + ztproxy + ";"},
		{"listen 80;", "listen " + listen + ";"},
		{"\nhttp {\n", "\nhttp {\n" + temp},
	} {
		if n := strings.Count(conf, r.old); n != 1 {
			t.Fatalf("examples/nginx/nginx.conf: %q occurs %d times, want 1", r.old, n)
		}
		conf = strings.Replace(conf, r.old, r.new, 1)
	}
	if os.Geteuid() == 0 {
		// Workers of a root master run as nobody, who cannot enter the
		// test's private temp directory.
		conf = "user root;\n" + conf
	}
	return conf
}

// startNginx runs nginx in the foreground with conf and waits until addr
// accepts connections.
func startNginx(t *testing.T, bin, dir, conf, addr string) {
	t.Helper()
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, confPath, conf)
	args := []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath,
		"-g", "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"}
	if out, err := exec.Command(bin, append([]string{"-t", "-q"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\nconfig:\n%s", err, out, conf)
	}
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nnginx error.log:\n%s", out.String(), log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited early: %s\n%s", out.String(), log)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("nginx did not start listening")
}

// nginxPlainClient does not follow redirects and keeps no cookies.
func nginxPlainClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// nginxDo sends one request with hdr and returns the response and body.
func nginxDo(t *testing.T, c *http.Client, method, target string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v // raw keys: X_Ztp_Email must go out as spelled
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, strings.TrimSpace(string(b))
}

// TestNginxForwardAuth puts the shipped nginx example in front of an app
// with ztproxy deciding every request through /.ztp/verify.
func TestNginxForwardAuth(t *testing.T) {
	e := newNginxEnv(t)
	c := nginxPlainClient()
	webClient := e.op.Client(t, "ztproxy")
	alice := e.op.CodeFlowTokens(t, webClient, e.op.User(t, "alice"), "", false)
	bob := e.op.CodeFlowTokens(t, webClient, e.op.User(t, "bob"), "", false)

	t.Run("bearer allowed: the app gets identity from the verify answer, not from the client", func(t *testing.T) {
		resp, body := nginxDo(t, c, "GET", e.base+"/admin/panel", http.Header{
			"Authorization": {"Bearer " + alice.IDToken},
			"X-Ztp-Email":   {"ceo@evil"},
			"X_Ztp_Email":   {"ceo@evil"},
			"X-Ztp-User":    {"ceo"},
			"X-Ztp-Groups":  {"root"},
			"X-Ztp-Device":  {"spiffe://evil/device"},
		})
		if resp.StatusCode != 200 || body != "app says hello to alice@ztp.test" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		h := e.lastSeen()
		if h.Get("X-Ztp-User") != e.op.Issuer+"#alice" || h.Get("X-Ztp-Email") != "alice@ztp.test" || !strings.Contains(h.Get("X-Ztp-Groups"), "admins") {
			t.Fatalf("identity headers at the app: %v", h)
		}
		for name, vals := range h {
			if strings.Contains(strings.Join(vals, ","), "evil") || vals[0] == "ceo" || vals[0] == "root" {
				t.Errorf("the app sees the client's spoofed %s: %q", name, vals)
			}
		}
		claims := verifyE2EAssertion(t, c, e.base, h.Get("X-Ztp-Assertion"), "admin")
		if claims["email"] != "alice@ztp.test" {
			t.Fatalf("assertion claims %v", claims)
		}
	})
	t.Run("no token: 401 with the bearer challenge", func(t *testing.T) {
		n := e.seenCount()
		resp, _ := nginxDo(t, c, "GET", e.base+"/api/items", nil)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer error="invalid_request"`) {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if e.seenCount() != n {
			t.Fatal("the app was reached")
		}
	})
	t.Run("denied group: 403", func(t *testing.T) {
		n := e.seenCount()
		resp, _ := nginxDo(t, c, "GET", e.base+"/admin/panel", http.Header{"Authorization": {"Bearer " + bob.IDToken}})
		if resp.StatusCode != 403 || e.seenCount() != n {
			t.Fatalf("%d (app reached: %v)", resp.StatusCode, e.seenCount() != n)
		}
		// The client cannot redirect the decision to another request.
		resp, _ = nginxDo(t, c, "GET", e.base+"/admin/panel", http.Header{"Authorization": {"Bearer " + bob.IDToken},
			"X-Original-Url": {e.base + "/api/items"}, "X-Original-Method": {"GET"},
			"X-Forwarded-Uri": {"/api/items"}, "X-Forwarded-Method": {"GET"}})
		if resp.StatusCode != 403 || e.seenCount() != n {
			t.Fatalf("with spoofed original-request headers: %d", resp.StatusCode)
		}
		resp, _ = nginxDo(t, c, "GET", e.base+"/api/items", http.Header{"Authorization": {"Bearer " + bob.IDToken}})
		if resp.StatusCode != 200 {
			t.Fatalf("bob on api: %d", resp.StatusCode)
		}
	})
	t.Run("browser route without a session: redirect to sign-in", func(t *testing.T) {
		resp, _ := nginxDo(t, c, "GET", e.base+"/hello?x=1", http.Header{"Accept": {"text/html"}})
		loc, err := resp.Location()
		if resp.StatusCode != 302 || err != nil || !strings.HasPrefix(loc.String(), e.base+"/.ztp/login?") || loc.Query().Get("rd") != e.base+"/hello?x=1" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("browser sign-in through nginx, then allowed", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		bc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
		resp := e.op.Login(t, bc, e.base+"/hello?x=1", e.op.User(t, "alice"), false)
		body := readBody(t, resp)
		if resp.StatusCode != 200 || body != "app says hello to alice@ztp.test" || resp.Request.URL.String() != e.base+"/hello?x=1" {
			t.Fatalf("after sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
		}
		if a := e.lastSeen().Get("X-Ztp-Assertion"); verifyE2EAssertion(t, c, e.base, a, "app")["email"] != "alice@ztp.test" {
			t.Fatal("assertion for the browser route")
		}
	})
	t.Run("browser user in a denied group: 403", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		bc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
		resp := e.op.Login(t, bc, e.base+"/hello", e.op.User(t, "mallory"), false)
		readBody(t, resp)
		if resp.StatusCode != 403 {
			t.Fatalf("mallory: %d at %s", resp.StatusCode, resp.Request.URL)
		}
	})
	t.Run("verify is not reachable through nginx", func(t *testing.T) {
		for _, p := range []string{"/.ztp/verify", "/.ztp//verify", "/.ztp/%76erify", "/_ztp_verify"} {
			resp, _ := nginxDo(t, c, "GET", e.base+p, http.Header{"Authorization": {"Bearer " + alice.IDToken},
				"X-Original-Url": {e.base + "/admin/panel"}, "X-Original-Method": {"GET"}})
			if resp.StatusCode == 200 || resp.Header.Get("X-Ztp-User") != "" {
				t.Errorf("%s through nginx: %d %v", p, resp.StatusCode, resp.Header)
			}
		}
	})
	t.Run("verify from an untrusted peer: 403", func(t *testing.T) {
		// 127.0.0.2 is loopback too, but not in trusted_proxies.
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
		uc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
		resp, body := nginxDo(t, uc, "GET", "http://"+e.ztproxy+"/.ztp/verify", http.Header{"Authorization": {"Bearer " + alice.IDToken},
			"X-Original-Url": {e.base + "/admin/panel"}, "X-Original-Method": {"GET"}, "X-Forwarded-For": {"127.0.0.1"}})
		if resp.StatusCode != 403 || !strings.Contains(body, "untrusted_peer") || resp.Header.Get("X-Ztp-User") != "" {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("verify from the trusted peer without the original URL: 400", func(t *testing.T) {
		resp, body := nginxDo(t, c, "GET", "http://"+e.ztproxy+"/.ztp/verify", http.Header{"Authorization": {"Bearer " + alice.IDToken}, "X-Original-Method": {"GET"}})
		if resp.StatusCode != 400 || resp.Header.Get("X-Ztp-User") != "" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		resp, _ = nginxDo(t, c, "GET", "http://"+e.ztproxy+"/.ztp/verify", http.Header{"Authorization": {"Bearer " + alice.IDToken},
			"X-Original-Method": {"GET"}, "X-Original-Url": {"not a url"}})
		if resp.StatusCode != 400 {
			t.Fatalf("garbage URL: %d", resp.StatusCode)
		}
	})
	t.Run("decisions are counted", func(t *testing.T) {
		m := e.proc.metrics(t)
		for _, want := range []string{
			`ztproxy_requests_total{code="200",decision="allow",route="admin"}`,
			`ztproxy_requests_total{code="403",decision="deny",route="admin"}`,
			`ztproxy_requests_total{code="401",decision="unauthenticated",route="api"}`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}
