package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"ztproxy/decide"
	"ztproxy/internal/testenv"
)

const boundaryPolicies = testPolicies + `
@id("matrix-eng")
permit (principal, action, resource == Route::"matrix") when { principal in Group::"eng" };

@id("m2-anyone")
permit (principal, action, resource == Route::"m2");

@id("m2-no-deletes")
forbid (principal, action, resource == Route::"m2") when { context.http.method == "DELETE" };

@id("web-eng")
permit (principal, action, resource == Route::"web") when { principal in Group::"eng" };

@id("ws-anyone-signed-in")
permit (principal, action, resource)
when { resource == Route::"ws" || resource == Route::"wsdev" || resource == Route::"wsapi" };
`

// newBoundaryProxy is the test proxy with the routes the boundary tests
// need besides public, api, admin and devices: "matrix" (accepts
// ;parameters, strips its prefix), "m2" (forbids DELETE by
// context.http.method), and WebSocket routes authenticated by a session
// cookie ("ws" on ws.example.com, one allowed extra origin), a client
// certificate ("wsdev") and a bearer token ("wsapi").
func newBoundaryProxy(t testing.TB) (*testProxy, []*http.Cookie) {
	tp := newTestProxy(t)
	cfg := tp.cfg
	cfg.Browser = newTestBrowser(t, tp)
	cfg.TrustedProxies = mustPrefixes(t, "192.0.2.10/32")
	cfg.Authorizer = mustEngine(t, boundaryPolicies)
	up := cfg.Routes[0].Upstream
	cfg.Routes = append(append([]decide.RouteConfig(nil), cfg.Routes...),
		decide.RouteConfig{Name: "matrix", Host: "app.example.com", PathPrefix: "/matrix", Upstream: up, Auth: decide.AuthBearer, AllowPathParameters: true, StripPrefix: true},
		decide.RouteConfig{Name: "m2", Host: "app.example.com", PathPrefix: "/m2", Upstream: up, Auth: decide.AuthPublic},
		decide.RouteConfig{Name: "web", Host: "web.example.com", PathPrefix: "/", Upstream: up, Auth: decide.AuthBrowser, IdP: "corp"},
		decide.RouteConfig{Name: "ws", Host: "ws.example.com", PathPrefix: "/", Upstream: up, Auth: decide.AuthBrowser, IdP: "corp", WebSocket: true,
			AllowedOrigins: []string{"https://Portal.Example.com:443"}},
		decide.RouteConfig{Name: "wsdev", Host: "ws.example.com", PathPrefix: "/dev", Upstream: up, Auth: decide.AuthMTLS, WebSocket: true},
		decide.RouteConfig{Name: "wsapi", Host: "ws.example.com", PathPrefix: "/api", Upstream: up, Auth: decide.AuthBearer, WebSocket: true},
	)
	s, err := New(cfg, Options{Audit: slog.New(slog.NewJSONHandler(tp.audit, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tp.server, tp.cfg = s, cfg
	return tp, sealTestSession(t, "eng")
}

// doRaw sends a request whose path is given exactly as on the wire.
func (tp *testProxy) doRaw(t testing.TB, method, host, rawPath string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", "https://"+host+"/", nil)
	req.Method = method
	req.URL.RawPath = rawPath
	req.URL.Path, _ = pathUnescapeForTest(rawPath)
	req.RequestURI = rawPath
	req.RemoteAddr = "203.0.113.7:1"
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	tp.server.Handler().ServeHTTP(rec, req)
	return rec
}

// Issue 12.2: ";" path parameters bypassed routing and policy: with a
// public catch-all and a bearer /admin, /pub/..;/admin/x reached the
// upstream without a token (a servlet container reads it as /admin/x),
// and /admin;x was routed to the catch-all.
func TestPathParametersDoNotBypassRouting(t *testing.T) {
	tp, _ := newBoundaryProxy(t)
	eng := tp.bearer(t, "eng") // may use api and matrix, not admin
	tests := []struct {
		name, path string
		hdr        http.Header
		wantStatus int
		wantPath   string // what the upstream receives; "" = not reached
	}{
		{"dot-dot with params, no token", "/pub/..;/admin/x", nil, 400, ""},
		{"encoded dots with params", "/pub/%2e%2e;/admin/x", nil, 400, ""},
		{"encoded semicolon", "/pub/..%3B/admin/x", nil, 400, ""},
		{"lower-case encoded semicolon", "/pub/..%3b/admin/x", nil, 400, ""},
		{"dot with params", "/pub/.;x/admin/x", nil, 400, ""},
		{"params on a route without the opt-in", "/admin;x", eng, 400, ""},
		{"params on the catch-all", "/pub;x/y", nil, 400, ""},
		{"encoded semicolon on an opt-in route", "/matrix%3Bv=1/x", eng, 400, ""},
		{"opt-in route: params reach the upstream", "/matrix;v=1/cars;color=red/x", eng, 200, "/cars;color=red/x"},
		{"opt-in route: jsessionid", "/matrix/;jsessionid=AB12", eng, 200, "/;jsessionid=AB12"},
		{"opt-in route still runs its policy", "/matrix;v=1/x", tp.bearer(t, "sales"), 403, ""},
		{"opt-in route: dot-dot with params", "/matrix/..;/admin", eng, 400, ""},
		{"admin without params: policy", "/admin/x", eng, 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp.upstream.reset()
			rec := tp.doRaw(t, "GET", "app.example.com", tt.path, tt.hdr)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			got := tp.upstream.lastRequest()
			switch {
			case tt.wantPath == "" && got != nil:
				t.Fatalf("upstream reached with %q", got.URL.RequestURI())
			case tt.wantPath != "" && (got == nil || got.URL.RequestURI() != tt.wantPath):
				t.Fatalf("upstream got %v, want %q", got, tt.wantPath)
			}
		})
	}
}

// Issue 12.4: "delete" passed a forbid on context.http.method == "DELETE"
// and reached the upstream as "delete".
func TestMethodMustBeCanonical(t *testing.T) {
	tp, _ := newBoundaryProxy(t)
	tests := []struct {
		method     string
		wantStatus int
	}{
		{"delete", 400},
		{"Delete", 400},
		{"DELETE", 403},
		{"GET", 200},
		{"PROPFIND", 200}, // unregistered, upper case: policy decides
		{"M-SEARCH", 200},
		{"GET1", 400},
		{"CONNECT", 405},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			tp.upstream.reset()
			rec := tp.doRaw(t, tt.method, "app.example.com", "/m2/x", nil)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			got := tp.upstream.lastRequest()
			if (got != nil) != (tt.wantStatus == 200) || got != nil && got.Method != tt.method {
				t.Fatalf("upstream got %v", got)
			}
		})
	}
	if rec := tp.doRaw(t, "get", "app.example.com", "/.ztp/jwks.json", nil); rec.Code != 400 {
		t.Errorf("lower-case method on a /.ztp/ endpoint: %d", rec.Code)
	}
	if !strings.Contains(tp.audit.String(), `"method":"delete"`) {
		t.Errorf("refused method not audited:\n%s", tp.audit)
	}
}

// Issue 12.4 for forward-auth and ext_authz: X-Original-Method: delete was
// allowed past a forbid on DELETE.
func TestOriginalMethodMustBeCanonical(t *testing.T) {
	tp, _ := newBoundaryProxy(t)
	e := &verifyEnv{testProxy: tp, server: tp.server}
	for name, hdr := range map[string]http.Header{
		"nginx":   nginxStyle("delete", "https://app.example.com/m2/x", nil),
		"traefik": forwardedStyle("Delete", "https", "app.example.com", "/m2/x", nil),
	} {
		t.Run(name, func(t *testing.T) {
			rec := e.verify(t, verifyTrustedPeer, hdr)
			if rec.Code != 400 || decodeVerifyBody(t, rec).Error != "bad_original_request" {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
		})
	}
	if rec := e.verify(t, verifyTrustedPeer, nginxStyle("DELETE", "https://app.example.com/m2/x", nil)); rec.Code != 403 {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
	}
	c := extAuthzClient(t, tp.server)
	denied(t, check(t, c, envoyCheck("delete", "app.example.com", "/m2/x", nil, "")), 400, codes.InvalidArgument)
	denied(t, check(t, c, envoyCheck("DELETE", "app.example.com", "/m2/x", nil, "")), 403, codes.PermissionDenied)
}

// Issue 12.2 for forward-auth and ext_authz: the path judged is the raw
// path the upstream behind the front proxy receives.
func TestOriginalPathParameters(t *testing.T) {
	tp, _ := newBoundaryProxy(t)
	e := &verifyEnv{testProxy: tp, server: tp.server}
	eng := tp.bearer(t, "eng")
	for _, p := range []string{"/pub/..;/admin/x", "/pub/%2e%2e;/admin/x", "/pub/..%3B/admin/x", "/admin;x", "/api%3Bx{", "/admin#x"} {
		t.Run(p, func(t *testing.T) {
			for name, hdr := range map[string]http.Header{
				"nginx":   nginxStyle("GET", "https://app.example.com"+p, eng),
				"traefik": forwardedStyle("GET", "https", "app.example.com", p, eng),
			} {
				if rec := e.verify(t, verifyTrustedPeer, hdr); rec.Code != 400 {
					t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
				}
			}
			denied(t, check(t, extAuthzClient(t, tp.server), envoyCheck("GET", "app.example.com", p, eng, "")), 400, codes.InvalidArgument)
		})
	}
	if rec := e.verify(t, verifyTrustedPeer, nginxStyle("GET", "https://app.example.com/matrix;v=1/x", eng)); rec.Code != 200 {
		t.Fatalf("opt-in route: %d %s", rec.Code, rec.Body)
	}
}

// Issue 12.6: a WebSocket upgrade with the session cookie from a page on
// https://evil.test was forwarded (cross-site WebSocket hijacking).
func TestWebSocketOriginChecked(t *testing.T) {
	tp, session := newBoundaryProxy(t)
	tests := []struct {
		name, path, origin string
		hdr                http.Header
		wantStatus         int
	}{
		{"cookie, foreign origin", "/chat", "https://evil.test", testenv.WebSocketHeaders("https://evil.test", session), 403},
		{"cookie, sibling subdomain", "/chat", "", testenv.WebSocketHeaders("https://evil.example.com", session), 403},
		{"cookie, own host over http", "/chat", "", testenv.WebSocketHeaders("http://ws.example.com", session), 403},
		{"cookie, own host other port", "/chat", "", testenv.WebSocketHeaders("https://ws.example.com:8443", session), 403},
		{"cookie, null origin", "/chat", "", testenv.WebSocketHeaders("null", session), 403},
		{"cookie, no origin", "/chat", "", testenv.WebSocketHeaders("", session), 403},
		{"cookie, two origins", "/chat", "", func() http.Header {
			h := testenv.WebSocketHeaders("https://ws.example.com", session)
			h.Add("Origin", "https://evil.test")
			return h
		}(), 403},
		{"cookie, own origin", "/chat", "", testenv.WebSocketHeaders("https://WS.example.com:443", session), 200},
		{"cookie, allowed origin", "/chat", "", testenv.WebSocketHeaders("https://portal.example.com", session), 200},
		{"bearer route, foreign origin", "/api/x", "", func() http.Header {
			h := testenv.WebSocketHeaders("https://evil.test", nil)
			h.Set("Authorization", tp.bearer(t, "eng").Get("Authorization"))
			return h
		}(), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp.upstream.reset()
			rec := tp.do(t, "GET", "https://ws.example.com"+tt.path, tt.hdr)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if reached := tp.upstream.lastRequest() != nil; reached != (tt.wantStatus == 200) {
				t.Fatalf("upstream reached: %v", reached)
			}
		})
	}
}

// Issue 12.6 through forward-auth: nginx drops Upgrade and Connection
// from the auth subrequest, but Sec-WebSocket-Key and Origin reach it.
func TestVerifyWebSocketOrigin(t *testing.T) {
	tp, session := newBoundaryProxy(t)
	e := &verifyEnv{testProxy: tp, server: tp.server}
	hdr := testenv.WebSocketHeaders("https://evil.test", session)
	delete(hdr, "Connection")
	delete(hdr, "Upgrade")
	if rec := e.verify(t, verifyTrustedPeer, nginxStyle("GET", "https://ws.example.com/chat", hdr)); rec.Code != 403 {
		t.Fatalf("foreign origin: %d %s", rec.Code, rec.Body)
	}
	hdr["Origin"] = []string{"https://ws.example.com"}
	if rec := e.verify(t, verifyTrustedPeer, nginxStyle("GET", "https://ws.example.com/chat", hdr)); rec.Code != 200 {
		t.Fatalf("own origin: %d %s", rec.Code, rec.Body)
	}
}

// Issue 12.5: a request with both Content-Length and Transfer-Encoding
// kept its connection open, so the bytes after its chunked body were
// served as a second request.
func TestBoundaryClosesAfterChunkedRequests(t *testing.T) {
	tp, _ := newBoundaryProxy(t)
	for name, h := range map[string]http.Handler{"public": tp.server.Handler(), "admin": tp.server.AdminHandler()} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			path := "/m2/x"
			if name == "admin" {
				path = "/healthz"
			}
			smuggled := "GET /m2/smuggled HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
			raw := "POST " + path + " HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled
			responses := rawExchange(t, srv.Listener.Addr().String(), raw)
			if len(responses) != 1 || !responses[0].Close {
				t.Fatalf("responses: %v", responses)
			}
		})
	}
	if got := tp.upstream.lastRequest(); got == nil || got.URL.Path != "/m2/x" {
		t.Fatalf("upstream saw %v", got)
	}
}

// rawExchange writes raw to addr and reads every response until the
// server closes the connection or stays quiet for a second.
func rawExchange(t *testing.T, addr, raw string) []*http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var out []*http.Response
	for {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, resp)
	}
}

func TestExtAuthzRemovesDisguisedFramingHeaders(t *testing.T) {
	tp, _ := newBoundaryProxy(t)
	hdr := tp.bearer(t, "eng")
	hdr.Set("Transfer_Encoding", "chunked")
	hdr.Set("Content-Length", "5")
	_, ok := okHeaders(t, check(t, extAuthzClient(t, tp.server), envoyCheck("POST", "app.example.com", "/api/x", hdr, "")))
	remove := ok.GetHeadersToRemove()
	if !slices.Contains(remove, "transfer_encoding") || slices.Contains(remove, "content-length") {
		t.Fatalf("headers to remove: %v", remove)
	}
}
