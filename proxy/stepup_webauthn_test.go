package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/portal"
)

const webauthnTestPolicies = `
@id("eng-uses-web") permit (principal, action, resource) when { principal in Group::"eng" };
@id("admin-needs-key") @step_up("webauthn") @reason("the admin area needs your security key")
forbid (principal, action, resource == Route::"admin")
unless { context.auth.amr.contains("webauthn") && context.auth.age_seconds < 900 && principal in Group::"admins" };
`

// memKeys is an in-memory WebAuthn credential store.
type memKeys struct {
	mu   sync.Mutex
	list []authn.WebAuthnCredential
}

func (m *memKeys) PutCredential(_ context.Context, c authn.WebAuthnCredential) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = append(m.list, c)
	return nil
}

func (m *memKeys) ListCredentials(_ context.Context, user string) ([]authn.WebAuthnCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []authn.WebAuthnCredential
	for _, c := range m.list {
		if c.UserID == user {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memKeys) DeleteCredential(_ context.Context, user string, id []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range m.list {
		if c.UserID == user && bytes.Equal(c.ID, id) {
			m.list = append(m.list[:i], m.list[i+1:]...)
			return nil
		}
	}
	return authn.ErrWebAuthnKeyNotFound
}

func (m *memKeys) UpdateSignCount(context.Context, string, []byte, uint32) error { return nil }

type webauthnEnv struct {
	*testProxy
	server *Server
	keys   *memKeys
}

// newWebAuthnEnv is the test proxy with browser sign-in, security keys on
// ztp.example.com, and routes "admin" (needs a key) and "web".
func newWebAuthnEnv(t *testing.T, withKeys bool) *webauthnEnv {
	t.Helper()
	tp := newTestProxy(t)
	e := &webauthnEnv{testProxy: tp, keys: &memKeys{}}
	bc := authn.BrowserConfig{
		IdPs:        []authn.BrowserIdPConfig{{Name: "corp", Issuer: tp.issuer.srv.URL, ClientID: "c", ClientSecret: "s"}},
		ExternalURL: mustURL(t, "https://ztp.example.com"), Cookies: testSessionCookies, Store: &memorySessions{revoked: map[string]bool{}},
		ReturnHostAllowed: func(h string) bool { return h == "web.example.com" },
	}
	if withKeys {
		bc.WebAuthn = &authn.WebAuthnConfig{RPID: "ztp.example.com", RPOrigins: []string{"https://ztp.example.com"}, Store: e.keys}
	}
	browser, err := authn.NewBrowser(bc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tp.cfg
	cfg.Browser = browser
	cfg.Authorizer = mustEngine(t, webauthnTestPolicies)
	up := cfg.Routes[0].Upstream
	cfg.Routes = []decide.RouteConfig{
		{Name: "admin", Host: "web.example.com", PathPrefix: "/admin", Upstream: up, Auth: decide.AuthBrowser},
		{Name: "web", Host: "web.example.com", PathPrefix: "/", Upstream: up, Auth: decide.AuthBrowser},
	}
	e.server, err = New(cfg, Options{Audit: slog.New(slog.NewJSONHandler(tp.audit, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *webauthnEnv) send(t *testing.T, method, target string, cookies []*http.Cookie, hdr map[string]string, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = "203.0.113.7:5555"
	for _, c := range cookies {
		req.AddCookie(c)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.server.Handler().ServeHTTP(rec, req)
	return rec
}

var htmlNav = map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}

func TestWebAuthnStepUpRedirect(t *testing.T) {
	e := newWebAuthnEnv(t, true)
	rec := e.send(t, "GET", "https://web.example.com/admin/users?page=2", sealSession(t, time.Hour, []string{"pwd"}, "eng", "admins"), htmlNav, "")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || loc.Host != "ztp.example.com" || loc.Path != decide.WebAuthnStepUpPath || loc.Query().Get("rd") != "https://web.example.com/admin/users?page=2" {
		t.Fatalf("step-up: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	// Verified with a key a minute ago and still not allowed (not in
	// admins): explained, not sent round again.
	rec = e.send(t, "GET", "https://web.example.com/admin/users", sealSession(t, 10*time.Second, []string{"pwd", "hwk", "webauthn"}, "eng"), htmlNav, "")
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "completed the extra verification just now") {
		t.Fatalf("loop guard: %d %s", rec.Code, rec.Body)
	}
	// With the key verification and the group, the request passes.
	rec = e.send(t, "GET", "https://web.example.com/admin/users", sealSession(t, 10*time.Second, []string{"pwd", "hwk", "webauthn"}, "eng", "admins"), htmlNav, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("after key verification: %d %s", rec.Code, rec.Body)
	}
}

func TestWebAuthnRequirementWithoutWebAuthnDenies(t *testing.T) {
	e := newWebAuthnEnv(t, false)
	rec := e.send(t, "GET", "https://web.example.com/admin/users", sealSession(t, time.Hour, []string{"pwd"}, "eng", "admins"), htmlNav, "")
	if rec.Code != http.StatusForbidden || rec.Header().Get("Location") != "" {
		t.Fatalf("webauthn policy without webauthn: %d %v", rec.Code, rec.Header())
	}
	rec = e.send(t, "GET", "https://ztp.example.com"+decide.WebAuthnStepUpPath, sealSession(t, time.Minute, nil, "eng"), htmlNav, "")
	if rec.Code != http.StatusNotFound {
		t.Fatalf("pages without webauthn: %d", rec.Code)
	}
}

func TestWebAuthnPagesSendUsersWhereTheyMustGo(t *testing.T) {
	e := newWebAuthnEnv(t, true)
	fresh := sealSession(t, time.Minute, []string{"pwd"}, "eng")
	stale := sealSession(t, time.Hour, []string{"pwd"}, "eng")
	rd := url.QueryEscape("https://web.example.com/admin/x")

	// No key yet: verification sends to enrollment, keeping the way back.
	rec := e.send(t, "GET", "https://ztp.example.com"+decide.WebAuthnStepUpPath+"?rd="+rd, fresh, htmlNav, "")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || loc.Path != portal.WebAuthnEnrollPath || !strings.Contains(loc.Query().Get("rd"), decide.WebAuthnStepUpPath) {
		t.Fatalf("no key: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	// Enrollment with an old sign-in goes through the IdP first.
	rec = e.send(t, "GET", "https://ztp.example.com"+portal.WebAuthnEnrollPath+"?rd="+rd, stale, htmlNav, "")
	loc, _ = url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || loc.Path != decide.StepUpPath || loc.Query().Get("req") != authn.StepUpReauth {
		t.Fatalf("stale enrollment: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	// With a fresh sign-in the page is served, its script allowed by a
	// nonce in the CSP and nothing else.
	rec = e.send(t, "GET", "https://ztp.example.com"+portal.WebAuthnEnrollPath+"?rd="+rd, fresh, htmlNav, "")
	csp := rec.Header().Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]+)'`).FindStringSubmatch(csp)
	if rec.Code != http.StatusOK || m == nil || !strings.Contains(rec.Body.String(), `<script nonce="`+m[1]+`">`) || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("enroll page: %d CSP %q", rec.Code, csp)
	}
	// An open redirect in rd falls back to /.
	rec = e.send(t, "GET", "https://ztp.example.com"+portal.WebAuthnEnrollPath+"?rd="+url.QueryEscape("https://evil.example.net/"), fresh, htmlNav, "")
	if strings.Contains(rec.Body.String(), "evil.example.net") {
		t.Fatal("foreign rd kept")
	}
	// A request for another host is bounced to the external origin.
	rec = e.send(t, "GET", "https://web.example.com"+decide.WebAuthnStepUpPath+"?rd=/x", fresh, htmlNav, "")
	if rec.Code != http.StatusFound || !strings.HasPrefix(rec.Header().Get("Location"), "https://ztp.example.com"+decide.WebAuthnStepUpPath) {
		t.Fatalf("other host: %d %s", rec.Code, rec.Header().Get("Location"))
	}
}

func TestWebAuthnEndpointsRefuseOtherOrigins(t *testing.T) {
	e := newWebAuthnEnv(t, true)
	fresh := sealSession(t, time.Minute, []string{"pwd"}, "eng")
	begin := "https://ztp.example.com" + portal.EnrollBeginPath
	cases := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no origin, no fetch metadata", map[string]string{}, http.StatusForbidden},
		{"foreign origin", map[string]string{"Origin": "https://evil.example.net"}, http.StatusForbidden},
		{"route origin", map[string]string{"Origin": "https://web.example.com"}, http.StatusForbidden},
		{"own origin, cross-site fetch", map[string]string{"Origin": "https://ztp.example.com", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"null origin, same-site", map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"null origin, same-origin (form post)", map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"own origin", map[string]string{"Origin": "https://ztp.example.com"}, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.hdr["Accept"] = "application/json"
			rec := e.send(t, "POST", begin, fresh, tc.hdr, "{}")
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want != http.StatusOK {
				return
			}
			var out struct {
				PublicKey struct {
					Challenge string              `json:"challenge"`
					RP        struct{ ID string } `json:"rp"`
				} `json:"publicKey"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.PublicKey.Challenge == "" || out.PublicKey.RP.ID != "ztp.example.com" {
				t.Fatalf("options: %v %s", err, rec.Body)
			}
			if !strings.Contains(rec.Header().Get("Set-Cookie"), "_webauthn_register=") {
				t.Fatalf("no ceremony state cookie: %v", rec.Header())
			}
		})
	}
	// GET is not a way in.
	if rec := e.send(t, "GET", begin, fresh, map[string]string{"Origin": "https://ztp.example.com"}, ""); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET begin: %d", rec.Code)
	}
	// Without a session: sign-in required, nothing started.
	rec := e.send(t, "POST", begin, nil, map[string]string{"Origin": "https://ztp.example.com", "Accept": "application/json"}, "{}")
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Set-Cookie") != "" {
		t.Fatalf("no session: %d %v", rec.Code, rec.Header())
	}
	// A garbage assertion is a clear 4xx, not a 500.
	rec = e.send(t, "POST", "https://ztp.example.com"+portal.WebAuthnFinishPath, fresh, map[string]string{"Origin": "https://ztp.example.com", "Accept": "application/json"}, `{"id":"x"}`)
	if rec.Code < 400 || rec.Code >= 500 {
		t.Fatalf("garbage assertion: %d %s", rec.Code, rec.Body)
	}
}

func TestWhoamiListsSecurityKeys(t *testing.T) {
	e := newWebAuthnEnv(t, true)
	now := time.Now()
	_ = e.keys.PutCredential(context.Background(), authn.WebAuthnCredential{UserID: "https://idp#alice", ID: []byte{1, 2, 3}, Name: "blue key", CreatedAt: now})
	_ = e.keys.PutCredential(context.Background(), authn.WebAuthnCredential{UserID: "https://idp#bob", ID: []byte{4}, Name: "bob's key", CreatedAt: now})
	rec := e.send(t, "GET", "https://ztp.example.com/.ztp/whoami", sealSession(t, time.Minute, nil, "eng"), map[string]string{"Accept": "application/json"}, "")
	var out portal.Whoami
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Keys) != 1 || out.Keys[0].Name != "blue key" || out.Keys[0].ID != "AQID" {
		t.Fatalf("whoami keys: %v %s", err, rec.Body)
	}
	rec = e.send(t, "GET", "https://ztp.example.com/.ztp/whoami", sealSession(t, time.Minute, nil, "eng"), htmlNav, "")
	if !strings.Contains(rec.Body.String(), "blue key") || !strings.Contains(rec.Body.String(), `action="/.ztp/stepup/keys/remove"`) || strings.Contains(rec.Body.String(), "bob&#39;s key") {
		t.Fatalf("whoami page: %s", rec.Body)
	}
	// Removing needs a recent key verification: a password session is
	// sent to verify first and the key stays.
	form := map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
	rec = e.send(t, "POST", "https://ztp.example.com"+portal.WebAuthnRemovePath, sealSession(t, time.Minute, []string{"pwd"}, "eng"), form, "id=AQID")
	if rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), decide.WebAuthnStepUpPath) {
		t.Fatalf("remove without key verification: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	rec = e.send(t, "POST", "https://ztp.example.com"+portal.WebAuthnRemovePath, sealSession(t, time.Minute, []string{"pwd", "hwk", "webauthn"}, "eng"), form, "id=AQID")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://ztp.example.com/.ztp/whoami" {
		t.Fatalf("remove: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if keys, _ := e.keys.ListCredentials(context.Background(), "https://idp#alice"); len(keys) != 0 {
		t.Fatalf("key not removed: %v", keys)
	}
	// Removing it again (a second click) is a clear 404, not a 503.
	rec = e.send(t, "POST", "https://ztp.example.com"+portal.WebAuthnRemovePath, sealSession(t, time.Minute, []string{"pwd", "hwk", "webauthn"}, "eng"), form, "id=AQID")
	if rec.Code != http.StatusNotFound {
		t.Fatalf("removing a removed key: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(e.audit.String(), `"path":"/.ztp/stepup/keys/remove"`) {
		t.Fatal("removal not audited")
	}
}
