package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"ztproxy/decide"
	"ztproxy/idheaders"
)

// verifyAssertion checks an X-Ztp-Assertion the way an upstream would:
// signature against /.ztp/jwks.json, issuer, audience and expiry.
func verifyAssertion(t *testing.T, s *Server, raw, wantAud string) (map[string]any, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(set.Keys[0].Key, &std, &all); err != nil {
		return nil, err
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: "https://ztp.example.com", AnyAudience: jwt.Audience{wantAud}, Time: time.Now()}, 0); err != nil {
		return nil, err
	}
	return all, nil
}

func TestBearerAllowForwardsIdentity(t *testing.T) {
	tp := newTestProxy(t)
	rec := tp.do(t, "GET", "https://app.example.com/api/items?x=1", tp.bearer(t, "eng"))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := tp.upstream.lastRequest()
	if got.URL.Path != "/api/items" || got.URL.RawQuery != "x=1" {
		t.Errorf("upstream got %s?%s", got.URL.Path, got.URL.RawQuery)
	}
	if got.Header.Get("Authorization") != "" {
		t.Error("the consumed bearer token was forwarded")
	}
	if u := got.Header.Get("X-Ztp-User"); !strings.HasSuffix(u, "#alice") {
		t.Errorf("X-Ztp-User = %q", u)
	}
	if got.Header.Get("X-Ztp-Email") != "alice@example.com" || got.Header.Get("X-Ztp-Groups") != "eng" {
		t.Errorf("identity headers: %v", got.Header)
	}
	claims, err := verifyAssertion(t, tp.server, got.Header.Get("X-Ztp-Assertion"), "api")
	if err != nil {
		t.Fatalf("assertion does not verify: %v", err)
	}
	if claims["email"] != "alice@example.com" {
		t.Errorf("assertion claims: %v", claims)
	}
	if _, err := verifyAssertion(t, tp.server, got.Header.Get("X-Ztp-Assertion"), "admin"); err == nil {
		t.Error("assertion for route api verified for route admin")
	}
	if got.Header.Get("X-Forwarded-For") != "203.0.113.7" {
		t.Errorf("X-Forwarded-For = %q", got.Header.Get("X-Forwarded-For"))
	}
	if !strings.Contains(tp.audit.String(), `"decision":"allow"`) || strings.Contains(tp.audit.String(), "eyJ") {
		t.Errorf("audit line wrong or contains a token: %s", tp.audit.String())
	}
}

func TestBearerFailures(t *testing.T) {
	tp := newTestProxy(t)
	tests := []struct {
		name       string
		hdr        http.Header
		wantStatus int
		wantChall  string
	}{
		{"missing", nil, 401, `error="invalid_request"`},
		{"not bearer", http.Header{"Authorization": {"Basic YTpi"}}, 401, `error="invalid_request"`},
		{"garbage", http.Header{"Authorization": {"Bearer abc.def.ghi"}}, 401, `error="invalid_token"`},
		{"wrong aud", http.Header{"Authorization": {"Bearer " + tp.issuer.token(t, "alice", "other", nil)}}, 401, `error="invalid_token"`},
		{"not in group", tp.bearer(t, "sales"), 403, ""},
		{"step-up", tp.bearer(t, "eng"), 401, `error="insufficient_user_authentication"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp.upstream.reset()
			method := "GET"
			if tt.name == "step-up" {
				method = "DELETE"
			}
			rec := tp.do(t, method, "https://app.example.com/api/x", tt.hdr)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if ch := rec.Header().Get("WWW-Authenticate"); tt.wantChall != "" && !strings.Contains(ch, tt.wantChall) {
				t.Errorf("WWW-Authenticate = %q, want %s", ch, tt.wantChall)
			}
			if tp.upstream.lastRequest() != nil {
				t.Error("a refused request reached the upstream")
			}
		})
	}
}

func TestSpoofedHeadersStripped(t *testing.T) {
	tp := newTestProxy(t)
	hdr := tp.bearer(t, "eng")
	hdr["X-Ztp-Email"] = []string{"ceo@example.com"}
	hdr["X_Ztp_Email"] = []string{"ceo@example.com"}
	hdr["X-Ztp-Groups"] = []string{"admins"}
	hdr["X-Forwarded-For"] = []string{"10.1.1.1"}
	hdr["X-Real-Ip"] = []string{"10.1.1.1"}
	hdr["X-Forwarded-Client-Cert"] = []string{"Hash=abc"}
	hdr["Connection"] = []string{"X-Ztp-User, X-Ztp-Assertion"}
	hdr["Cookie"] = []string{"_ztp_session=secret; theme=dark"}
	rec := tp.do(t, "GET", "https://app.example.com/api/office/x", hdr)
	// The spoofed X-Forwarded-For must not make the client look internal.
	if rec.Code != http.StatusForbidden {
		t.Fatalf("status %d: spoofed X-Forwarded-For was believed", rec.Code)
	}
	rec = tp.do(t, "GET", "https://app.example.com/api/x", hdr)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := tp.upstream.lastRequest()
	for name, vals := range got.Header {
		n := idheaders.NormalizeName(name)
		if strings.HasPrefix(n, "x-ztp-") && name != "X-Ztp-User" && name != "X-Ztp-Email" && name != "X-Ztp-Groups" && name != "X-Ztp-Assertion" {
			t.Errorf("spoofed header %s: %v reached the upstream", name, vals)
		}
	}
	if v := got.Header.Values("X-Ztp-Email"); len(v) != 1 || v[0] != "alice@example.com" {
		t.Errorf("X-Ztp-Email = %v", v)
	}
	if got.Header.Get("X-Ztp-Groups") != "eng" {
		t.Errorf("X-Ztp-Groups = %q", got.Header.Get("X-Ztp-Groups"))
	}
	if got.Header.Get("X-Ztp-User") == "" || got.Header.Get("X-Ztp-Assertion") == "" {
		t.Error("Connection: X-Ztp-User removed the proxy's own identity headers")
	}
	if got.Header.Get("X-Forwarded-For") != "203.0.113.7" || got.Header.Get("X-Real-Ip") != "" {
		t.Errorf("forwarding headers: XFF=%q X-Real-Ip=%q", got.Header.Get("X-Forwarded-For"), got.Header.Get("X-Real-Ip"))
	}
	if got.Header.Get("X-Forwarded-Client-Cert") != "" {
		t.Error("client-cert header forwarded")
	}
	if c := got.Header.Get("Cookie"); c != "theme=dark" {
		t.Errorf("Cookie forwarded as %q", c)
	}
}

func TestTrustedProxyClientIP(t *testing.T) {
	tp := newTestProxy(t)
	cfg := tp.cfg
	cfg.TrustedProxies = mustPrefixes(t, "203.0.113.0/24")
	if err := tp.server.Update(cfg); err != nil {
		t.Fatal(err)
	}
	hdr := tp.bearer(t, "eng")
	hdr["X-Forwarded-For"] = []string{"198.51.100.9, 10.2.3.4"}
	rec := tp.do(t, "GET", "https://app.example.com/api/office/x", hdr)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: client 10.2.3.4 behind a trusted proxy was not recognised", rec.Code)
	}
	if xff := tp.upstream.lastRequest().Header.Get("X-Forwarded-For"); xff != "198.51.100.9, 10.2.3.4, 203.0.113.7" {
		t.Errorf("X-Forwarded-For = %q", xff)
	}
}

func TestPathAttacks(t *testing.T) {
	tp := newTestProxy(t)
	admin := tp.bearer(t, "eng") // eng may use api, not admin
	tests := []struct {
		path       string
		wantStatus int
		wantPath   string
	}{
		{"/pub/../admin", 400, ""},
		{"/pub/%2e%2e/admin", 400, ""},
		{"/pub/%2E%2E/admin", 400, ""},
		{"/api%2F..%2Fadmin", 400, ""},
		{"/api%2fx", 400, ""},
		{"/api/%5c../admin", 400, ""},
		{"/api/%00", 400, ""},
		{"//admin", 403, ""},
		{"/%61dmin", 403, ""},
		{"/%61pi/x", 200, "/api/x"},
		{"//api//x", 200, "/api/x"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			tp.upstream.reset()
			rec := tp.doRaw(t, "GET", "app.example.com", tt.path, admin)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			got := tp.upstream.lastRequest()
			if tt.wantPath == "" && got != nil {
				t.Fatalf("upstream reached with %q", got.URL.Path)
			}
			if tt.wantPath != "" && (got == nil || got.URL.Path != tt.wantPath) {
				t.Fatalf("upstream path %v, want %q", got, tt.wantPath)
			}
		})
	}
}

func TestHostVariants(t *testing.T) {
	tp := newTestProxy(t)
	for _, host := range []string{"APP.Example.com.", "app.example.com:443", "App.Example.Com.:443"} {
		t.Run(host, func(t *testing.T) {
			req := httptest.NewRequest("GET", "https://app.example.com/api/x", nil)
			req.Host = host
			req.RemoteAddr = "203.0.113.7:1"
			req.Header["Authorization"] = tp.bearer(t, "sales")["Authorization"]
			rec := httptest.NewRecorder()
			tp.server.Handler().ServeHTTP(rec, req)
			// sales may not use api: the host variant must still hit the
			// api route and its policy.
			if rec.Code != http.StatusForbidden {
				t.Fatalf("host %q: status %d", host, rec.Code)
			}
		})
	}
	rec := tp.do(t, "GET", "https://other.example.com/", nil)
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown host: status %d", rec.Code)
	}
}

func TestMetricsOnlyOnAdmin(t *testing.T) {
	tp := newTestProxy(t)
	rec := tp.do(t, "GET", "https://ztp.example.com/metrics", nil)
	if rec.Code != http.StatusNotFound {
		t.Errorf("public /metrics: status %d", rec.Code)
	}
	rec = tp.do(t, "GET", "https://app.example.com/metrics", nil)
	if strings.Contains(rec.Body.String(), "ztproxy_requests_total") {
		t.Error("public listener served the proxy's metrics")
	}
	admin := httptest.NewRecorder()
	tp.server.AdminHandler().ServeHTTP(admin, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(admin.Body.String(), "ztproxy_requests_total") {
		t.Errorf("admin /metrics lacks ztproxy_requests_total")
	}
}

func TestInvalidUpdateKeepsServing(t *testing.T) {
	tp := newTestProxy(t)
	bad := tp.cfg
	bad.Routes = append([]decide.RouteConfig(nil), bad.Routes...)
	bad.Routes[0].Auth = "magic"
	if err := tp.server.Update(bad); err == nil {
		t.Fatal("invalid config accepted")
	}
	if rec := tp.do(t, "GET", "https://app.example.com/api/x", tp.bearer(t, "eng")); rec.Code != http.StatusOK {
		t.Fatalf("after a rejected update: status %d", rec.Code)
	}
}

func TestWebSocketOnlyWhenEnabled(t *testing.T) {
	tp := newTestProxy(t)
	hdr := tp.bearer(t, "eng")
	hdr["Connection"] = []string{"Upgrade"}
	hdr["Upgrade"] = []string{"websocket"}
	if rec := tp.do(t, "GET", "https://app.example.com/api/ws", hdr); rec.Code != http.StatusForbidden {
		t.Fatalf("upgrade on a non-websocket route: status %d", rec.Code)
	}
}

func TestMTLSRouteWithoutCertificate(t *testing.T) {
	tp := newTestProxy(t)
	if rec := tp.do(t, "GET", "https://app.example.com/devices/x", nil); rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestJWKSEndpoint(t *testing.T) {
	tp := newTestProxy(t)
	rec := tp.do(t, "GET", "https://app.example.com/.ztp/jwks.json", nil)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Algorithm != "ES256" {
		t.Fatalf("jwks: %v %s", err, rec.Body)
	}
	if rec := tp.do(t, "GET", "https://app.example.com/.ztp/nope", nil); rec.Code != http.StatusNotFound {
		t.Errorf("unknown /.ztp/ path: status %d", rec.Code)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	tp := newTestProxy(t)
	rec := httptest.NewRecorder()
	tp.server.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("pprof served without being enabled: %d", rec.Code)
	}
	s, err := New(tp.cfg, Options{Server: ServerConfig{Pprof: true}})
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("enabled pprof: %d", rec.Code)
	}
	if rec := tp.do(t, "GET", "https://app.example.com/debug/pprof/", nil); strings.Contains(rec.Body.String(), "goroutine") {
		t.Fatal("pprof reachable on the public listener")
	}
}

// TestStepUpChallengeRFC9470 checks the challenge format, including the
// IdP's acr_values and max_age hints.
func TestStepUpChallengeRFC9470(t *testing.T) {
	tp := newTestProxy(t)
	cfg := tp.cfg
	cfg.StepUpHints = map[string]decide.StepUpHint{"corp": {ACRValues: "urn:example:mfa", MaxAge: 5 * time.Minute}}
	if err := tp.server.Update(cfg); err != nil {
		t.Fatal(err)
	}
	rec := tp.do(t, "DELETE", "https://app.example.com/api/x", tp.bearer(t, "eng"))
	want := `Bearer error="insufficient_user_authentication", error_description="a stronger or more recent authentication is required", acr_values="urn:example:mfa", max_age=300`
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != want {
		t.Fatalf("status %d, challenge %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	if !strings.Contains(tp.audit.String(), `"decision":"step_up"`) || !strings.Contains(tp.audit.String(), `"step_up":["mfa"]`) {
		t.Fatalf("audit does not record the step-up: %s", tp.audit.String())
	}
}
