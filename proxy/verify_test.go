package proxy

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"ztproxy/decide"
	"ztproxy/forwardauth"
	"ztproxy/idheaders"
)

const verifyPolicies = testPolicies + `
@id("web-eng")
permit (principal, action, resource == Route::"web") when { principal in Group::"eng" };

@id("web-deletes-step-up")
@step_up("mfa")
forbid (principal, action == Action::"DELETE", resource == Route::"web")
unless { context.auth.mfa };
`

// verifyEnv is the test proxy with a trusted front proxy (192.0.2.10), a
// browser route "web" on web.example.com and a sealed session for alice.
type verifyEnv struct {
	*testProxy
	server  *Server
	session []*http.Cookie
}

func newVerifyEnv(t testing.TB) *verifyEnv {
	tp := newTestProxy(t)
	browser := newTestBrowser(t, tp)
	cfg := tp.cfg
	cfg.Browser = browser
	cfg.TrustedProxies = mustPrefixes(t, "192.0.2.10/32")
	cfg.Authorizer = mustEngine(t, verifyPolicies)
	cfg.Routes = append([]decide.RouteConfig(nil), cfg.Routes...)
	cfg.Routes = append(cfg.Routes, decide.RouteConfig{Name: "web", Host: "web.example.com", PathPrefix: "/", Upstream: cfg.Routes[0].Upstream, Auth: decide.AuthBrowser, PassIdentityHeaders: true, IdP: "corp"})
	s, err := New(cfg, Options{Audit: slog.New(slog.NewJSONHandler(tp.audit, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	sealed := sealTestSession(t, "eng")
	return &verifyEnv{testProxy: tp, server: s, session: sealed}
}

const verifyTrustedPeer = "192.0.2.10:40000"

// verify calls /.ztp/verify from peer with hdr.
func (e *verifyEnv) verify(t testing.TB, peer string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", "http://ztproxy.internal/.ztp/verify", nil)
	req.RemoteAddr = peer
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.server.Handler().ServeHTTP(rec, req)
	return rec
}

// nginxStyle returns nginx-style headers for method and URL plus extra.
func nginxStyle(method, rawURL string, extra http.Header) http.Header {
	h := http.Header{"X-Original-Method": {method}, "X-Original-Url": {rawURL}}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// forwardedStyle returns Traefik/Caddy-style headers plus extra.
func forwardedStyle(method, proto, host, uri string, extra http.Header) http.Header {
	h := http.Header{"X-Forwarded-Method": {method}, "X-Forwarded-Proto": {proto}, "X-Forwarded-Host": {host}, "X-Forwarded-Uri": {uri}}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

var verifyIdentityHeaders = []string{idheaders.User, idheaders.Email, idheaders.Groups, idheaders.Assertion}

func checkNoIdentity(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	for _, name := range verifyIdentityHeaders {
		if v := rec.Header().Get(name); v != "" {
			t.Errorf("%d answer carries %s: %q", rec.Code, name, v)
		}
	}
}

type verifyBody struct {
	Decision  string `json:"decision"`
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	StepUp    string `json:"step_up"`
}

func decodeVerifyBody(t *testing.T, rec *httptest.ResponseRecorder) verifyBody {
	t.Helper()
	var b verifyBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
	}
	if b.RequestID == "" {
		t.Errorf("body lacks the request id: %s", rec.Body)
	}
	return b
}

// verifyAssertionPayload decodes (without verifying) an assertion's claims.
func verifyAssertionPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion is not a JWS: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestVerifyAllowsWithIdentityHeaders(t *testing.T) {
	e := newVerifyEnv(t)
	eng := e.bearer(t, "eng")
	for name, hdr := range map[string]http.Header{
		"nginx":         nginxStyle("GET", "https://app.example.com/api/items?x=1", eng),
		"nginx port":    nginxStyle("GET", "https://app.example.com:443/api/items", eng),
		"traefik":       forwardedStyle("GET", "https", "app.example.com", "/api/items?x=1", eng),
		"traefik POST":  forwardedStyle("POST", "https", "App.Example.com", "/api/items", eng),
		"http original": nginxStyle("PUT", "http://app.example.com:80/api/./items", eng),
	} {
		t.Run(name, func(t *testing.T) {
			rec := e.verify(t, verifyTrustedPeer, hdr)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			h := rec.Header()
			if h.Get(idheaders.User) == "" || h.Get(idheaders.Email) != "alice@example.com" || h.Get(idheaders.Groups) != "eng" {
				t.Fatalf("identity headers: %v", h)
			}
			claims := verifyAssertionPayload(t, h.Get(idheaders.Assertion))
			if claims["aud"] != "api" || claims["iss"] != "https://ztp.example.com" || claims["email"] != "alice@example.com" {
				t.Fatalf("assertion claims: %v", claims)
			}
			if b := decodeVerifyBody(t, rec); b.Decision != "allow" || h.Get("Cache-Control") != "no-store" {
				t.Fatalf("body %+v, headers %v", b, h)
			}
		})
	}
}

func TestVerifyRefusesUntrustedPeers(t *testing.T) {
	e := newVerifyEnv(t)
	hdr := nginxStyle("GET", "https://app.example.com/api/items", e.bearer(t, "eng"))
	for _, peer := range []string{"203.0.113.7:5555", "192.0.2.11:1", "[2001:db8::1]:443"} {
		// A trusted address in X-Forwarded-For must not help: trust is the
		// TCP peer's.
		hdr.Set("X-Forwarded-For", "192.0.2.10")
		rec := e.verify(t, peer, hdr)
		if rec.Code != 403 || decodeVerifyBody(t, rec).Error != "untrusted_peer" {
			t.Fatalf("peer %s: %d %s", peer, rec.Code, rec.Body)
		}
		checkNoIdentity(t, rec)
	}
	if !strings.Contains(e.audit.String(), `"error":"untrusted_peer"`) {
		t.Errorf("untrusted verify not audited:\n%s", e.audit)
	}
}

func TestVerifyBadOriginalRequest(t *testing.T) {
	e := newVerifyEnv(t)
	eng := e.bearer(t, "eng")
	cases := map[string]http.Header{
		"nothing":             eng,
		"url without method":  {"X-Original-Url": {"https://app.example.com/api"}, "Authorization": eng["Authorization"]},
		"method without url":  {"X-Original-Method": {"GET"}, "Authorization": eng["Authorization"]},
		"empty url":           nginxStyle("GET", "", eng),
		"garbage url":         nginxStyle("GET", "::not a url::", eng),
		"relative url":        nginxStyle("GET", "/api/items", eng),
		"no path":             nginxStyle("GET", "https://app.example.com", eng),
		"ftp url":             nginxStyle("GET", "ftp://app.example.com/api", eng),
		"userinfo":            nginxStyle("GET", "https://alice@app.example.com/api", eng),
		"control byte":        nginxStyle("GET", "https://app.example.com/api/\x01", eng),
		"bad host":            nginxStyle("GET", "https://app.example.com:x/api", eng),
		"bad method":          nginxStyle("G T", "https://app.example.com/api", eng),
		"encoded slash":       nginxStyle("GET", "https://app.example.com/api%2F..%2Fadmin", eng),
		"dot dot":             nginxStyle("GET", "https://app.example.com/api/../admin", eng),
		"repeated url":        {"X-Original-Method": {"GET"}, "X-Original-Url": {"https://app.example.com/api", "https://app.example.com/admin"}, "Authorization": eng["Authorization"]},
		"both styles":         nginxStyle("GET", "https://app.example.com/api", forwardedStyle("DELETE", "https", "app.example.com", "/admin", eng)),
		"forwarded no proto":  {"X-Forwarded-Method": {"GET"}, "X-Forwarded-Host": {"app.example.com"}, "X-Forwarded-Uri": {"/api"}, "Authorization": eng["Authorization"]},
		"forwarded no host":   {"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Uri": {"/api"}, "Authorization": eng["Authorization"]},
		"forwarded no uri":    {"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}, "Authorization": eng["Authorization"]},
		"forwarded abs uri":   forwardedStyle("GET", "https", "app.example.com", "https://evil.example/api", eng),
		"forwarded bad proto": forwardedStyle("GET", "gopher", "app.example.com", "/api", eng),
	}
	for name, hdr := range cases {
		t.Run(name, func(t *testing.T) {
			rec := e.verify(t, verifyTrustedPeer, hdr)
			if rec.Code != 400 {
				t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
			}
			decodeVerifyBody(t, rec)
			checkNoIdentity(t, rec)
		})
	}
}

func TestVerifyBearerAnswers(t *testing.T) {
	e := newVerifyEnv(t)
	eng, sales := e.bearer(t, "eng"), e.bearer(t, "sales")
	cases := []struct {
		name   string
		hdr    http.Header
		status int
		code   string
		www    string // substring of WWW-Authenticate
	}{
		{"no token", nginxStyle("GET", "https://app.example.com/api/items", nil), 401, "invalid_request", `Bearer error="invalid_request"`},
		{"forged token", nginxStyle("GET", "https://app.example.com/api/items", http.Header{"Authorization": {eng.Get("Authorization") + "x"}}), 401, "invalid_token", "invalid_token"},
		{"wrong group", nginxStyle("GET", "https://app.example.com/api/items", sales), 403, "forbidden", ""},
		{"admin needs admins", forwardedStyle("GET", "https", "app.example.com", "/admin/panel", eng), 403, "forbidden", ""},
		// The policy action is the original method, not the verify
		// request's GET.
		{"delete needs step-up", nginxStyle("DELETE", "https://app.example.com/api/items/1", eng), 401, "insufficient_user_authentication", `error="insufficient_user_authentication"`},
		{"no route", nginxStyle("GET", "https://other.example.com/api", eng), 404, "no_route", ""},
		{"mtls route", nginxStyle("GET", "https://app.example.com/devices/x", nil), 401, "client_certificate_required", ""},
		{"office path from outside", nginxStyle("GET", "https://app.example.com/api/office/x", eng), 403, "forbidden", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := e.verify(t, verifyTrustedPeer, c.hdr)
			b := decodeVerifyBody(t, rec)
			if rec.Code != c.status || b.Error != c.code {
				t.Fatalf("got %d %s, want %d %s: %s", rec.Code, b.Error, c.status, c.code, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, c.www) || (c.www == "") != (got == "") {
				t.Fatalf("WWW-Authenticate %q, want %q", got, c.www)
			}
			checkNoIdentity(t, rec)
		})
	}
	t.Run("mtls message is clear", func(t *testing.T) {
		rec := e.verify(t, verifyTrustedPeer, nginxStyle("GET", "https://app.example.com/devices/x", nil))
		if !strings.Contains(decodeVerifyBody(t, rec).Message, "forward-auth cannot verify client certificates") {
			t.Fatalf("body %s", rec.Body)
		}
	})
	t.Run("client address comes through the trusted proxy", func(t *testing.T) {
		hdr := nginxStyle("GET", "https://app.example.com/api/office/x", eng)
		hdr.Set("X-Forwarded-For", "10.1.2.3")
		if rec := e.verify(t, verifyTrustedPeer, hdr); rec.Code != 200 {
			t.Fatalf("office client via trusted proxy: %d %s", rec.Code, rec.Body)
		}
	})
}

func TestVerifyBrowserAnswers(t *testing.T) {
	e := newVerifyEnv(t)
	withSession := http.Header{}
	for _, c := range e.session {
		withSession.Add("Cookie", c.Name+"="+c.Value)
	}
	t.Run("signed in", func(t *testing.T) {
		rec := e.verify(t, verifyTrustedPeer, nginxStyle("GET", "https://web.example.com/dashboard", withSession))
		if rec.Code != 200 || rec.Header().Get(idheaders.User) != "https://idp#alice" || rec.Header().Get(forwardauth.HeaderLogin) != "" {
			t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
		}
		if aud := verifyAssertionPayload(t, rec.Header().Get(idheaders.Assertion))["aud"]; aud != "web" {
			t.Fatalf("aud %v", aud)
		}
	})
	t.Run("no session: 401 with the sign-in URL, never a redirect", func(t *testing.T) {
		hdr := nginxStyle("GET", "https://web.example.com/dashboard/../dashboard?tab=1", http.Header{"Accept": {"text/html"}, "Sec-Fetch-Mode": {"navigate"}})
		hdr.Set("X-Original-Url", "https://web.example.com/dashboard?tab=1")
		rec := e.verify(t, verifyTrustedPeer, hdr)
		if rec.Code != 401 || rec.Header().Get("Location") != "" || decodeVerifyBody(t, rec).Error != "login_required" {
			t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
		}
		login, err := url.Parse(rec.Header().Get(forwardauth.HeaderLogin))
		if err != nil || login.Scheme+"://"+login.Host+login.Path != "https://ztp.example.com/.ztp/login" {
			t.Fatalf("X-Ztp-Login %q", rec.Header().Get(forwardauth.HeaderLogin))
		}
		if rd, idp := login.Query().Get("rd"), login.Query().Get("idp"); rd != "https://web.example.com/dashboard?tab=1" || idp != "corp" {
			t.Fatalf("rd %q idp %q", rd, idp)
		}
		checkNoIdentity(t, rec)
	})
	t.Run("redirect=true: a page load gets a 302, an API call still a 401", func(t *testing.T) {
		hdr := forwardedStyle("GET", "https", "web.example.com", "/dashboard", http.Header{"Accept": {"text/html"}})
		req := httptest.NewRequest("GET", "http://ztproxy.internal/.ztp/verify?redirect=true", nil)
		req.RemoteAddr = verifyTrustedPeer
		req.Header = hdr
		rec := httptest.NewRecorder()
		e.server.Handler().ServeHTTP(rec, req)
		if loc := rec.Header().Get("Location"); rec.Code != 302 || !strings.HasPrefix(loc, "https://ztp.example.com/.ztp/login?") {
			t.Fatalf("%d %q", rec.Code, loc)
		}
		checkNoIdentity(t, rec)
		req.Header = forwardedStyle("POST", "https", "web.example.com", "/dashboard", http.Header{"Accept": {"text/html"}})
		rec = httptest.NewRecorder()
		e.server.Handler().ServeHTTP(rec, req)
		if rec.Code != 401 || rec.Header().Get("Location") != "" {
			t.Fatalf("POST: %d %v", rec.Code, rec.Header())
		}
	})
	t.Run("http original keeps its scheme in the return URL", func(t *testing.T) {
		rec := e.verify(t, verifyTrustedPeer, forwardedStyle("GET", "http", "web.example.com:8080", "/x", nil))
		login, _ := url.Parse(rec.Header().Get(forwardauth.HeaderLogin))
		if rec.Code != 401 || login.Query().Get("rd") != "http://web.example.com:8080/x" {
			t.Fatalf("%d %q", rec.Code, rec.Header().Get(forwardauth.HeaderLogin))
		}
	})
	t.Run("step-up: 403 with the step-up URL and requirements, never a redirect", func(t *testing.T) {
		hdr := forwardedStyle("DELETE", "http", "web.example.com:8080", "/doc/1?v=2", withSession)
		hdr.Set("Sec-Fetch-Mode", "navigate")
		rec := e.verify(t, verifyTrustedPeer, hdr)
		b := decodeVerifyBody(t, rec)
		if rec.Code != 403 || rec.Header().Get(forwardauth.HeaderStepUpRequirements) != "mfa" || b.Error != "step_up" || b.StepUp != "mfa" || rec.Header().Get("Location") != "" {
			t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
		}
		su, err := url.Parse(rec.Header().Get(forwardauth.HeaderStepUp))
		if err != nil || su.Scheme+"://"+su.Host+su.Path != "https://ztp.example.com"+decide.StepUpPath ||
			su.Query().Get("rd") != "http://web.example.com:8080/doc/1?v=2" || su.Query().Get("req") != "mfa" {
			t.Fatalf("X-Ztp-Step-Up %q", rec.Header().Get(forwardauth.HeaderStepUp))
		}
		if rec.Header().Get("WWW-Authenticate") != "" {
			t.Fatal("browser step-up carries a bearer challenge")
		}
		checkNoIdentity(t, rec)
	})
}

func TestVerifyAuditsAndCounts(t *testing.T) {
	e := newVerifyEnv(t)
	e.verify(t, verifyTrustedPeer, nginxStyle("GET", "https://app.example.com/api/items", e.bearer(t, "eng")))
	e.verify(t, verifyTrustedPeer, nginxStyle("GET", "https://app.example.com/api/items", e.bearer(t, "sales")))
	audit := e.audit.String()
	for _, want := range []string{`"route":"api"`, `"path":"/api/items"`, `"decision":"allow"`, `"decision":"deny"`, `"status":200`, `"status":403`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
	families, err := e.server.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "ztproxy_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			found[labels["route"]+"/"+labels["decision"]+"/"+labels["code"]] = true
		}
	}
	if !found["api/allow/200"] || !found["api/deny/403"] {
		t.Fatalf("requests_total series: %v", found)
	}
}

// BenchmarkVerify measures a forward-auth decision in-process for a valid
// bearer token: header parsing, routing, the cached token verification,
// Cedar, the (cached) assertion, the answer and the audit line.
func BenchmarkVerify(b *testing.B) {
	e := newVerifyEnv(b)
	e.server.engineOpts.Audit = slog.New(slog.NewJSONHandler(io.Discard, nil))
	hdr := nginxStyle("GET", "https://app.example.com/api/items/42?x=1", e.bearer(b, "eng"))
	benchVerify(b, e, hdr)
}

// BenchmarkVerifySession is BenchmarkVerify for a browser session cookie.
func BenchmarkVerifySession(b *testing.B) {
	e := newVerifyEnv(b)
	e.server.engineOpts.Audit = slog.New(slog.NewJSONHandler(io.Discard, nil))
	hdr := nginxStyle("GET", "https://web.example.com/dashboard?tab=1", nil)
	for _, c := range e.session {
		hdr.Add("Cookie", c.Name+"="+c.Value)
	}
	benchVerify(b, e, hdr)
}

func benchVerify(b *testing.B, e *verifyEnv, hdr http.Header) {
	req := httptest.NewRequest("GET", "http://ztproxy.internal/.ztp/verify", nil)
	req.RemoteAddr = verifyTrustedPeer
	req.Header = hdr
	req.Header.Set("User-Agent", "bench/1.0")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	h := e.server.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
