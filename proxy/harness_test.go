package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"ztproxy/authn"
	"ztproxy/authz"
	"ztproxy/decide"
	"ztproxy/identity"
)

// testIssuer is a minimal in-process OIDC issuer (discovery + JWKS) that
// mints ES256 tokens, for proxy tests that need real JWT verification.
type testIssuer struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newTestIssuer(t testing.TB) *testIssuer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks", "authorization_endpoint": is.srv.URL + "/auth",
			"token_endpoint": is.srv.URL + "/token", "id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// token mints a token for sub with the given extra claims.
func (is *testIssuer) token(t testing.TB, sub, aud string, extra map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: is.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{"iss": is.srv.URL, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (is *testIssuer) verifier(t testing.TB) *authn.BearerVerifier {
	v, err := authn.NewBearerVerifier(authn.BearerConfig{IdPs: []authn.IdPConfig{{Name: "corp", Issuer: is.srv.URL, Audiences: []string{"api"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// appUpstream records what the protected app received.
type appUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	last *http.Request
}

func newUpstream(t testing.TB) *appUpstream {
	u := &appUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *appUpstream) lastRequest() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func (u *appUpstream) reset() {
	u.mu.Lock()
	u.last = nil
	u.mu.Unlock()
}

func mustURL(t testing.TB, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustEngine(t testing.TB, policies string) *authz.Engine {
	e, err := authz.New(authz.Config{Policies: []authz.PolicyFile{{Name: "test.cedar", Text: []byte(policies)}}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const testPolicies = `
@id("public-get")
permit (principal, action == Action::"GET", resource == Route::"public");

@id("api-eng")
permit (principal, action, resource == Route::"api") when { principal in Group::"eng" };

@id("admin-admins")
permit (principal, action, resource == Route::"admin") when { principal in Group::"admins" };

@id("devices")
permit (principal, action, resource == Route::"devices")
when { context.device.spiffe_id == "spiffe://ztproxy.dev/device/dev-laptop" };

@id("api-writes-step-up")
@step_up("mfa")
@reason("writes need a fresh second factor")
forbid (principal, action == Action::"DELETE", resource == Route::"api")
unless { context.auth.mfa };

@id("office-only")
forbid (principal, action, resource == Route::"api")
when { context.http.path like "/api/office*" && !context.network.client_ip.isInRange(ip("10.0.0.0/8")) };
`

type testProxy struct {
	server   *Server
	upstream *appUpstream
	issuer   *testIssuer
	cfg      decide.Config
	audit    *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func newTestProxy(t testing.TB) *testProxy {
	up := newUpstream(t)
	is := newTestIssuer(t)
	upURL := mustURL(t, up.srv.URL)
	route := func(name, prefix string, auth decide.AuthMode) decide.RouteConfig {
		return decide.RouteConfig{Name: name, Host: "app.example.com", PathPrefix: prefix, Upstream: upURL, Auth: auth, PassIdentityHeaders: true}
	}
	cfg := decide.Config{
		ExternalURL: mustURL(t, "https://ztp.example.com"),
		Authorizer:  mustEngine(t, testPolicies),
		Bearer:      is.verifier(t),
		Routes: []decide.RouteConfig{
			route("public", "/", decide.AuthPublic),
			route("api", "/api", decide.AuthBearer),
			route("admin", "/admin", decide.AuthBearer),
			route("devices", "/devices", decide.AuthMTLS),
		},
		SessionCookieName: "_ztp_session",
	}
	audit := &syncBuffer{}
	s, err := New(cfg, Options{Audit: slog.New(slog.NewJSONHandler(audit, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &testProxy{server: s, upstream: up, issuer: is, cfg: cfg, audit: audit}
}

// do sends a request through the proxy's handler as if from remote.
func (tp *testProxy) do(t testing.TB, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = "203.0.113.7:5555"
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	tp.server.Handler().ServeHTTP(rec, req)
	return rec
}

func (tp *testProxy) bearer(t testing.TB, groups ...string) http.Header {
	return tp.bearerWith(t, map[string]any{"groups": groups, "email": "alice@example.com"})
}

func (tp *testProxy) bearerWith(t testing.TB, claims map[string]any) http.Header {
	return http.Header{"Authorization": {"Bearer " + tp.issuer.token(t, "alice", "api", claims)}}
}

var _ identity.Effect // keep identity imported for helpers in other test files

// testSessionCookies configures the browser session cookie in tests.
var testSessionCookies = authn.SessionCodecConfig{CookieName: "_ztp_session", Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}}

// newTestBrowser is browser sign-in against the test issuer with an
// in-memory session store.
func newTestBrowser(t testing.TB, tp *testProxy) *authn.Browser {
	t.Helper()
	browser, err := authn.NewBrowser(authn.BrowserConfig{
		IdPs:        []authn.BrowserIdPConfig{{Name: "corp", Issuer: tp.issuer.srv.URL, ClientID: "c", ClientSecret: "s"}},
		ExternalURL: mustURL(t, "https://ztp.example.com"), Cookies: testSessionCookies, Store: &memorySessions{revoked: map[string]bool{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return browser
}

// sealTestSession returns the cookies of a live session of alice.
func sealTestSession(t testing.TB, groups ...string) []*http.Cookie {
	return sealSession(t, 0, []string{"pwd"}, groups...)
}

// sealSession returns the cookies of a live session of alice who
// authenticated authAge ago with amr.
func sealSession(t testing.TB, authAge time.Duration, amr []string, groups ...string) []*http.Cookie {
	t.Helper()
	codec, err := authn.NewSessionCodec(testSessionCookies)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sealed, err := codec.Seal(&authn.Session{
		ID: authn.NewSessionID(), IssuedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour),
		Principal: identity.Principal{Kind: identity.KindUser, ID: "https://idp#alice", Issuer: "https://idp", Subject: "alice",
			Email: "alice@example.com", Groups: groups, AMR: amr, AuthTime: now.Add(-authAge), IdP: "corp"},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// memorySessions is a minimal SessionStore for in-process tests: the hot
// path only asks IsRevoked, which production answers from a cache.
type memorySessions struct{ revoked map[string]bool }

func (m *memorySessions) SaveSession(context.Context, authn.SessionRecord) error { return nil }
func (m *memorySessions) LoadSession(context.Context, string) (authn.SessionRecord, error) {
	return authn.SessionRecord{}, authn.ErrSessionNotFound
}
func (m *memorySessions) RevokeSession(_ context.Context, id string, _ time.Time) error {
	m.revoked[id] = true
	return nil
}
func (m *memorySessions) UpdateSessionTokens(context.Context, string, string, string, time.Time) error {
	return nil
}
func (m *memorySessions) IsRevoked(_ context.Context, id string) (bool, error) {
	return m.revoked[id], nil
}
