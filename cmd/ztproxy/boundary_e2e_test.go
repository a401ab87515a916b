package main

import (
	"bufio"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

const boundaryE2EPolicies = `
@id("open") permit (principal, action, resource)
when { resource == Route::"pub" || resource == Route::"site" || resource == Route::"m2" };

@id("m2-no-deletes")
forbid (principal, action, resource == Route::"m2") when { context.http.method == "DELETE" };

@id("admins") permit (principal, action, resource == Route::"admin") when { principal in Group::"admins" };

@id("eng") permit (principal, action, resource)
when { principal in Group::"eng" && (resource == Route::"ws" || resource == Route::"wsportal" || resource == Route::"matrix") };
`

// seenRequest is one request as the upstream received it.
type seenRequest struct {
	Method, URI, Body string
	Header            http.Header
	Complete          bool // the body was read to its end
}

func (s seenRequest) String() string { return s.Method + " " + s.URI + " " + s.Body }

// boundaryEnv is the real binary over TLS with the routes of issue 12:
// a public /pub and catch-all, a bearer /admin, a public /m2 that forbids
// DELETE by context.http.method, a browser WebSocket route /ws, and
// /.ztp/verify for 127.0.0.1. Tokens and sessions come from the real test
// OP (npm oidc-provider). The upstream records every request and answers
// WebSocket upgrades with 101, then echoes bytes.
type boundaryEnv struct {
	base, host, certDir string
	op                  *testenv.OIDCProvider
	proc                *proc
	mu                  sync.Mutex
	seen                []seenRequest
}

func (e *boundaryEnv) requests() []seenRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]seenRequest(nil), e.seen...)
}

func (e *boundaryEnv) reset() {
	e.mu.Lock()
	e.seen = nil
	e.mu.Unlock()
}

func newBoundaryEnv(t *testing.T, extraRoutes string) *boundaryEnv {
	dir := t.TempDir()
	e := &boundaryEnv{certDir: filepath.Join(dir, "certs")}
	if code, out := runZtproxy(t, "certs", "dev", "--out", e.certDir); code != 0 {
		t.Fatal(out)
	}
	e.host = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.base = "https://" + e.host
	e.op = testenv.StartOIDC(t, testenv.OIDCOptions{Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: "boundary-test-secret",
		RedirectURIs: []string{e.base + "/.ztp/callback"}, PostLogoutRedirectURIs: []string{e.base + "/.ztp/signed-out"}}}})
	up := httptest.NewServer(http.HandlerFunc(e.upstream))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), boundaryE2EPolicies)
	writeFile(t, filepath.Join(dir, "ztproxy.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem, client_ca_file: certs/ca.pem, client_auth: request}
trusted_proxies: [127.0.0.1]
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, client_id: ztproxy, client_secret: boundary-test-secret, audiences: [ztproxy], scopes: [openid, email, profile, groups]}
session:
  secrets: ["0123456789abcdef0123456789abcdef"]
store: {path: state.db}
routes:
  - {name: pub, host: 127.0.0.1, path_prefix: /pub, upstream: %[5]q, auth: public}
  - {name: admin, host: 127.0.0.1, path_prefix: /admin, upstream: %[5]q, auth: bearer}
  - {name: m2, host: 127.0.0.1, path_prefix: /m2, upstream: %[5]q, auth: public}
  - {name: ws, host: 127.0.0.1, path_prefix: /ws, upstream: %[5]q, auth: browser, websocket: true}
  - {name: site, host: 127.0.0.1, upstream: %[5]q, auth: public}
%s`, e.host, admin, e.base, e.op.Issuer, up.URL, strings.ReplaceAll(extraRoutes, "{upstream}", up.URL)))
	e.proc = startServe(t, filepath.Join(dir, "ztproxy.yaml"), admin, e.host)
	return e
}

func (e *boundaryEnv) upstream(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	e.mu.Lock()
	e.seen = append(e.seen, seenRequest{Method: r.Method, URI: r.RequestURI, Body: string(body), Header: r.Header.Clone(), Complete: err == nil})
	e.mu.Unlock()
	if r.Header.Get("Upgrade") != "websocket" {
		io.WriteString(w, "upstream saw "+r.Method+" "+r.RequestURI)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	sum := sha1.Sum([]byte(r.Header.Get("Sec-Websocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
	brw.Flush()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, _ := brw.Read(buf)
	conn.Write(buf[:n])
}

// tlsConfig trusts the dev CA; no ALPN, so the connection is HTTP/1.1.
func (e *boundaryEnv) tlsConfig(t *testing.T) *tls.Config {
	pem, err := os.ReadFile(filepath.Join(e.certDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// rawResult is what came back on one connection.
type rawResult struct {
	statuses []int
	bodies   []string
	closed   bool // the server closed the connection after the responses
}

// raw writes bytes to ztproxy over TLS exactly as given ("{host}" is
// replaced) and reads responses until the connection closes or is quiet.
func (e *boundaryEnv) raw(t *testing.T, request string) rawResult {
	t.Helper()
	conn, err := tls.Dial("tcp", e.host, e.tlsConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, strings.ReplaceAll(request, "{host}", e.host)); err != nil {
		t.Fatal(err)
	}
	var res rawResult
	br := bufio.NewReader(conn)
	for {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			res.closed = !(errors.As(err, &ne) && ne.Timeout())
			return res
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res.statuses = append(res.statuses, resp.StatusCode)
		res.bodies = append(res.bodies, string(b))
		if resp.StatusCode == http.StatusSwitchingProtocols {
			io.WriteString(conn, "ping")
			buf := make([]byte, 4)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _ := io.ReadFull(br, buf)
			res.bodies[len(res.bodies)-1] = string(buf[:n])
			return res
		}
	}
}

func (e *boundaryEnv) do(t *testing.T, method, rawPath string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: e.tlsConfig(t)},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(method, e.base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "//" + e.host + rawPath // sent exactly as written
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestE2EBoundaryAttacks runs the examples of issue 12 against the real
// binary: each was accepted before the fix.
func TestE2EBoundaryAttacks(t *testing.T) {
	e := newBoundaryEnv(t, "")
	bob := e.op.CodeFlowTokens(t, e.op.Client(t, "ztproxy"), e.op.User(t, "bob"), "", false) // eng, not admins
	bobAuth := http.Header{"Authorization": {"Bearer " + bob.IDToken}}

	// Issue 12.2: servlet containers strip ";params" and read "..;" as
	// "..": /pub/..;/admin/x is /admin/x to them, and was forwarded
	// without a token; /admin;x went to the catch-all.
	t.Run("12.2 path parameters", func(t *testing.T) {
		for _, tt := range []struct {
			path string
			hdr  http.Header
		}{
			{"/pub/..;/admin/x", nil},
			{"/pub/%2e%2e;/admin/x", nil},
			{"/pub/..%3B/admin/x", nil},
			{"/admin;x", bobAuth},
			{"/admin;x/panel", bobAuth},
		} {
			e.reset()
			resp, body := e.do(t, "GET", tt.path, tt.hdr)
			if resp.StatusCode != 400 || len(e.requests()) != 0 {
				t.Errorf("%s: %d %s, upstream got %v", tt.path, resp.StatusCode, body, e.requests())
			}
		}
		if resp, _ := e.do(t, "GET", "/admin/x", bobAuth); resp.StatusCode != 403 {
			t.Errorf("/admin/x as bob: %d", resp.StatusCode)
		}
	})
	// Issue 12.4: "delete" passed a forbid on context.http.method ==
	// "DELETE" and reached the upstream as "delete".
	t.Run("12.4 method case", func(t *testing.T) {
		for method, want := range map[string]int{"delete": 400, "Delete": 400, "DELETE": 403, "PROPFIND": 200} {
			e.reset()
			resp, body := e.do(t, method, "/m2/x", nil)
			got := e.requests()
			if resp.StatusCode != want || (want == 200) != (len(got) == 1) || len(got) == 1 && got[0].Method != method {
				t.Errorf("%s: %d %s, upstream got %v", method, resp.StatusCode, body, got)
			}
		}
		for _, method := range []string{"delete", "DELETE"} {
			resp, body := e.do(t, "GET", "/.ztp/verify", http.Header{"X-Original-Method": {method}, "X-Original-Url": {e.base + "/m2/x"}})
			if want := map[string]int{"delete": 400, "DELETE": 403}[method]; resp.StatusCode != want {
				t.Errorf("verify %s: %d %s", method, resp.StatusCode, body)
			}
		}
	})
	// Issue 12.6: a signed-in browser's cookie opened a WebSocket for a
	// page on https://evil.test.
	t.Run("12.6 websocket origin", func(t *testing.T) {
		cookie := e.signIn(t, "/ws/hello")
		upgrade := "GET /ws/chat HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: " + cookie + "\r\n"
		for origin, want := range map[string]int{"Origin: https://evil.test\r\n": 403, "": 403, "Origin: https://" + e.host + "\r\n": 101} {
			e.reset()
			res := e.raw(t, upgrade+origin+"\r\n")
			if len(res.statuses) != 1 || res.statuses[0] != want {
				t.Errorf("%q: %v %v", origin, res.statuses, res.bodies)
				continue
			}
			if want == 101 && res.bodies[0] != "ping" {
				t.Errorf("no echo through the tunnel: %q", res.bodies[0])
			}
			if reached := len(e.requests()) > 0; reached != (want == 101) {
				t.Errorf("%q: upstream reached %v", origin, reached)
			}
		}
	})
	t.Run("12.5 smuggling", func(t *testing.T) { e.smugglingSuite(t) })
}

// signIn signs alice in at the real OP through path and returns her
// cookies as one Cookie header value.
func (e *boundaryEnv) signIn(t *testing.T, path string) string {
	t.Helper()
	c := (&browserEnv{certDir: e.certDir}).client(t)
	resp := e.op.Login(t, c, e.base+path, e.op.User(t, "alice"), false)
	if body := readBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	u, _ := url.Parse(e.base)
	var parts []string
	for _, ck := range c.Jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; ")
}

// TestE2EBoundaryOptIns covers the route settings that relax the
// defaults: allow_path_parameters (issue 12.2) and allowed_origins (12.6).
func TestE2EBoundaryOptIns(t *testing.T) {
	e := newBoundaryEnv(t, `  - {name: matrix, host: 127.0.0.1, path_prefix: /matrix, upstream: "{upstream}", auth: bearer, allow_path_parameters: true, strip_prefix: true}
  - {name: wsportal, host: 127.0.0.1, path_prefix: /portal, upstream: "{upstream}", auth: browser, websocket: true, allowed_origins: ["https://portal.example.test"]}
`)
	bob := e.op.CodeFlowTokens(t, e.op.Client(t, "ztproxy"), e.op.User(t, "bob"), "", false)
	bobAuth := http.Header{"Authorization": {"Bearer " + bob.IDToken}}
	e.reset()
	resp, body := e.do(t, "GET", "/matrix;v=1/cars;color=red/x?q=1", bobAuth)
	if got := e.requests(); resp.StatusCode != 200 || len(got) != 1 || got[0].URI != "/cars;color=red/x?q=1" {
		t.Fatalf("matrix parameters: %d %s, upstream got %v", resp.StatusCode, body, got)
	}
	for _, p := range []string{"/matrix/..;/admin", "/matrix%3Bv=1/x", "/pub;x"} {
		if resp, _ := e.do(t, "GET", p, bobAuth); resp.StatusCode != 400 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	cookie := e.signIn(t, "/portal/hello")
	upgrade := "GET /portal/chat HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: " + cookie + "\r\n"
	for origin, want := range map[string]int{"https://portal.example.test": 101, "https://evil.test": 403, "https://other.portal.example.test": 403} {
		if res := e.raw(t, upgrade+"Origin: "+origin+"\r\n\r\n"); len(res.statuses) != 1 || res.statuses[0] != want {
			t.Errorf("%s: %v", origin, res.statuses)
		}
	}
}
