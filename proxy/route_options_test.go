package proxy

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"ztproxy/decide"
	"ztproxy/idheaders"
)

// withRoute updates tp so that its "api" route (bearer, group eng) has
// the options change sets.
func withRoute(t *testing.T, tp *testProxy, change func(rc *decide.RouteConfig)) {
	t.Helper()
	cfg := tp.cfg
	cfg.Routes = append([]decide.RouteConfig(nil), tp.cfg.Routes...)
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == "api" {
			change(&cfg.Routes[i])
		}
	}
	if err := tp.server.Update(cfg); err != nil {
		t.Fatal(err)
	}
}

func mustRules(t *testing.T, spec idheaders.RuleSpec, request bool) *idheaders.Rules {
	t.Helper()
	r, err := idheaders.CompileRules(spec, request)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Issue 18 (CORS preflight): only a real preflight passes unauthenticated,
// only on a route that allows it, and the audit line says so.
func TestCORSPreflight(t *testing.T) {
	tp := newTestProxy(t)
	preflight := http.Header{"Origin": {"https://web.example.com"}, "Access-Control-Request-Method": {"PUT"}}
	if rec := tp.do(t, "OPTIONS", "https://app.example.com/api/items", preflight); rec.Code != http.StatusUnauthorized {
		t.Fatalf("preflight on a route without cors_preflight: %d, want 401", rec.Code)
	}
	withRoute(t, tp, func(rc *decide.RouteConfig) { rc.CORSPreflight = true })
	tp.upstream.reset()
	rec := tp.do(t, "OPTIONS", "https://app.example.com/api/items", preflight)
	if rec.Code != http.StatusOK || tp.upstream.lastRequest() == nil {
		t.Fatalf("preflight with cors_preflight: allow: %d %q, want forwarded", rec.Code, rec.Body)
	}
	if got := tp.upstream.lastRequest().Header.Get(idheaders.User); got != "" {
		t.Errorf("preflight carried identity %q", got)
	}
	if !strings.Contains(tp.audit.String(), `"decision":"cors_preflight"`) {
		t.Errorf("audit does not record the preflight as such:\n%s", tp.audit)
	}
	for name, hdr := range map[string]http.Header{
		"plain OPTIONS":            nil,
		"Origin only":              {"Origin": {"https://web.example.com"}},
		"method only":              {"Access-Control-Request-Method": {"PUT"}},
		"lower-case method":        {"Origin": {"https://web.example.com"}, "Access-Control-Request-Method": {"put"}},
		"two Origin headers":       {"Origin": {"https://a.example", "https://b.example"}, "Access-Control-Request-Method": {"PUT"}},
		"GET with preflight heads": nil,
	} {
		method := "OPTIONS"
		if name == "GET with preflight heads" {
			method, hdr = "GET", preflight
		}
		tp.upstream.reset()
		if rec := tp.do(t, method, "https://app.example.com/api/items", hdr); rec.Code != http.StatusUnauthorized || tp.upstream.lastRequest() != nil {
			t.Errorf("%s: %d (forwarded: %v), want 401", name, rec.Code, tp.upstream.lastRequest() != nil)
		}
	}
}

// Issue 18 (headers): templates over the identity, removal, and the
// anti-spoofing of identity headers that no route can undo.
func TestRouteRequestHeaders(t *testing.T) {
	tp := newTestProxy(t)
	withRoute(t, tp, func(rc *decide.RouteConfig) {
		rc.RequestHeaders = mustRules(t, idheaders.RuleSpec{
			Set:    map[string]string{"X-Remote-User": "{{.Email}}", "X-App-Groups": "{{.Groups}}", "X-Static": "v1"},
			Remove: []string{"X-Debug"},
		}, true)
	})
	hdr := tp.bearer(t, "eng", "ops")
	hdr["X-Debug"] = []string{"1"}
	hdr["X-Ztp-User"] = []string{"mallory"}
	hdr["X-Remote-User"] = []string{"mallory@example.com"}
	if rec := tp.do(t, "GET", "https://app.example.com/api/x", hdr); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := tp.upstream.lastRequest().Header
	for name, want := range map[string]string{"X-Remote-User": "alice@example.com", "X-App-Groups": "eng,ops", "X-Static": "v1", "X-Debug": ""} {
		if v := strings.Join(got[name], "|"); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	if v := got.Get(idheaders.User); strings.Contains(v, "mallory") {
		t.Errorf("client-supplied X-Ztp-User reached the upstream: %q", v)
	}
}

// Issue 18 (headers): a claim with CR/LF or non-ASCII bytes rendered into
// a header refuses the request; nothing reaches the upstream.
func TestRouteRequestHeadersHostileValues(t *testing.T) {
	tp := newTestProxy(t)
	withRoute(t, tp, func(rc *decide.RouteConfig) {
		rc.RequestHeaders = mustRules(t, idheaders.RuleSpec{Set: map[string]string{"X-Remote-Name": "{{.Name}}", "X-Remote-Groups": "{{.Groups}}"}}, true)
	})
	for _, claims := range []map[string]any{
		{"name": "Alice\r\nX-Ztp-User: admin"}, {"name": "Alice\nX: y"}, {"name": "Zoë"}, {"name": "a\x00b"},
		{"groups": []string{"eng", "ops\r\nX-Ztp-User: admin"}}, {"groups": []string{"eng", "ünïcode"}},
	} {
		if claims["groups"] == nil {
			claims["groups"] = []string{"eng"}
		}
		tp.upstream.reset()
		rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearerWith(t, claims))
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "header_value_refused") || tp.upstream.lastRequest() != nil {
			t.Errorf("claims %q: %d %s (forwarded %v), want 403 header_value_refused", claims, rec.Code, rec.Body, tp.upstream.lastRequest() != nil)
		}
	}
	// A plain identity passes.
	if rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearerWith(t, map[string]any{"groups": []string{"eng"}, "name": "Alice Smith"})); rec.Code != http.StatusOK ||
		tp.upstream.lastRequest().Header.Get("X-Remote-Name") != "Alice Smith" {
		t.Errorf("plain name: %d %q", rec.Code, tp.upstream.lastRequest().Header.Get("X-Remote-Name"))
	}
}

// Issue 18 (headers): response rules and the security preset.
func TestRouteResponseHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "app/1.2.3")
		w.Header().Set("X-Frame-Options", "ALLOWALL")
		w.Write([]byte("ok"))
	}))
	t.Cleanup(up.Close)
	tp := newTestProxy(t)
	withRoute(t, tp, func(rc *decide.RouteConfig) {
		rc.Upstream = mustURL(t, up.URL)
		rc.ResponseHeaders = mustRules(t, idheaders.RuleSpec{Set: map[string]string{"X-Served-To": "{{.Email}}"},
			Remove: []string{"Server"}, Preset: idheaders.PresetSecurity}, false)
	})
	rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearer(t, "eng"))
	h := rec.Header()
	for name, want := range map[string]string{"Server": "", "X-Served-To": "alice@example.com", "X-Frame-Options": "SAMEORIGIN",
		"X-Content-Type-Options": "nosniff", "Strict-Transport-Security": "max-age=31536000; includeSubDomains"} {
		if v := h.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
}

// Issue 18 (paths and hosts): policy and the audit path see the request's
// canonical path; the upstream gets the rewritten one, logged next to it.
func TestRouteRewrites(t *testing.T) {
	tp := newTestProxy(t)
	cases := []struct {
		name, target, want string
		rw                 *decide.PathRewrite
	}{
		{"prefix", "/api/v1/items", "/backend/v1/items", &decide.PathRewrite{Prefix: "/backend"}},
		{"prefix root", "/api", "/", &decide.PathRewrite{Prefix: "/"}},
		{"regex", "/api/users/42/profile", "/profiles/42", &decide.PathRewrite{Regex: mustRegex(t, `^/api/users/([0-9]+)/profile$`), Substitution: "/profiles/$1"}},
	}
	for _, tc := range cases {
		withRoute(t, tp, func(rc *decide.RouteConfig) { rc.Rewrite, rc.HostRewrite = tc.rw, "internal.example:8443" })
		rec := tp.do(t, "GET", "https://app.example.com"+tc.target, tp.bearer(t, "eng"))
		got := tp.upstream.lastRequest()
		if rec.Code != http.StatusOK || got.URL.Path != tc.want {
			t.Errorf("%s: %d, upstream path %q, want %q", tc.name, rec.Code, got.URL.Path, tc.want)
			continue
		}
		if got.Host != "internal.example:8443" {
			t.Errorf("%s: Host %q, want the host_rewrite", tc.name, got.Host)
		}
		if !strings.Contains(tp.audit.String(), `"path":"`+tc.target+`","upstream_path":"`+tc.want+`"`) {
			t.Errorf("%s: audit lacks path and upstream_path:\n%s", tc.name, tp.audit)
		}
	}
	// A rewrite that would forward a ".." segment is refused.
	withRoute(t, tp, func(rc *decide.RouteConfig) {
		rc.Rewrite = &decide.PathRewrite{Regex: mustRegex(t, `^/api/(.*)$`), Substitution: "/$1/../admin"}
	})
	tp.upstream.reset()
	if rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearer(t, "eng")); rec.Code != http.StatusBadRequest || tp.upstream.lastRequest() != nil {
		t.Errorf("rewrite to a dot-dot path: %d, want 400 and nothing forwarded", rec.Code)
	}
}

// Issue 18 (limits): a route's own body limit, with and without a
// Content-Length.
func TestRouteBodyLimit(t *testing.T) {
	tp := newTestProxy(t)
	withRoute(t, tp, func(rc *decide.RouteConfig) { rc.MaxBodyBytes = 10 })
	auth := tp.bearerWith(t, map[string]any{"groups": []string{"eng"}, "amr": []string{"pwd", "otp"}})["Authorization"][0]
	for _, chunked := range []bool{false, true} {
		req := httptest.NewRequest("POST", "https://app.example.com/api/upload", strings.NewReader(strings.Repeat("x", 100)))
		if chunked {
			req.ContentLength = -1
		}
		req.RemoteAddr = "203.0.113.7:1"
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		tp.server.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked=%v: %d, want 413", chunked, rec.Code)
		}
	}
	// Other routes keep the server's (unlimited) default.
	req := httptest.NewRequest("POST", "https://app.example.com/upload", strings.NewReader(strings.Repeat("x", 100)))
	req.RemoteAddr = "203.0.113.7:1"
	rec := httptest.NewRecorder()
	tp.server.Handler().ServeHTTP(rec, req)
	if rec.Code == http.StatusRequestEntityTooLarge {
		t.Errorf("the public route inherited the api route's limit")
	}
}

// Issue 18 (limits): the rate limit is per principal: alice exhausting
// hers leaves bob's untouched; 429 carries Retry-After.
func TestRouteRateLimitPerPrincipal(t *testing.T) {
	tp := newTestProxy(t)
	withRoute(t, tp, func(rc *decide.RouteConfig) { rc.RateLimit = &decide.RateLimit{RequestsPerSecond: 0.01, Burst: 2} })
	alice := tp.bearer(t, "eng")
	bob := http.Header{"Authorization": {"Bearer " + tp.issuer.token(t, "bob", "api", map[string]any{"groups": []string{"eng"}})}}
	for i := range 2 {
		if rec := tp.do(t, "GET", "https://app.example.com/api/x", alice); rec.Code != http.StatusOK {
			t.Fatalf("alice request %d: %d", i, rec.Code)
		}
	}
	rec := tp.do(t, "GET", "https://app.example.com/api/x", alice)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("alice over her limit: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := tp.do(t, "GET", "https://app.example.com/api/x", bob); rec.Code != http.StatusOK {
		t.Fatalf("bob after alice was limited: %d", rec.Code)
	}
}

func mustRegex(t *testing.T, pattern string) *regexp.Regexp {
	t.Helper()
	re, err := decide.CompileRegexRewrite(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

// Issue 18 (limits): response_header_timeout bounds the wait for the
// upstream's header on its own, shorter than the route's timeout.
func TestRouteResponseHeaderTimeout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
		w.Write([]byte("late"))
	}))
	t.Cleanup(slow.Close)
	tp := newTestProxy(t)
	withRoute(t, tp, func(rc *decide.RouteConfig) {
		rc.Upstream, rc.Timeout, rc.ResponseHeaderTimeout = mustURL(t, slow.URL), time.Minute, 200*time.Millisecond
	})
	start := time.Now()
	rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearer(t, "eng"))
	if rec.Code != http.StatusGatewayTimeout || !strings.Contains(rec.Body.String(), "upstream_timeout") || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("%d %s after %v, want 504 upstream_timeout within about 200ms", rec.Code, rec.Body, time.Since(start))
	}
}
