package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"ztproxy/authn"
	"ztproxy/identity"
)

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

// BenchmarkBrowserPath measures the browser hot path in-process: open the
// sealed session cookie, check revocation (cached), Cedar policy, the
// assertion, header rewriting and forwarding to a no-op upstream.
func BenchmarkBrowserPath(b *testing.B) {
	tp := newTestProxy(b)
	secret := []byte("0123456789abcdef0123456789abcdef")
	cookies := authn.SessionCodecConfig{CookieName: "_ztp_session", Secrets: [][]byte{secret}}
	browser, err := authn.NewBrowser(authn.BrowserConfig{
		IdPs:        []authn.BrowserIdPConfig{{Name: "corp", Issuer: tp.issuer.srv.URL, ClientID: "c", ClientSecret: "s"}},
		ExternalURL: mustURL(b, "https://ztp.example.com"), Cookies: cookies, Store: &memorySessions{revoked: map[string]bool{}},
	})
	if err != nil {
		b.Fatal(err)
	}
	cfg := tp.cfg
	cfg.Browser = browser
	cfg.Authorizer = mustEngine(b, testPolicies+`@id("web-eng") permit (principal, action, resource == Route::"web") when { principal in Group::"eng" };`)
	cfg.Routes = append([]RouteConfig(nil), cfg.Routes...)
	cfg.Routes = append(cfg.Routes, RouteConfig{Name: "web", Host: "web.example.com", PathPrefix: "/", Upstream: cfg.Routes[0].Upstream, Auth: AuthBrowser, PassIdentityHeaders: true})
	s, err := New(cfg, Options{UpstreamTransport: noopTransport{}, Audit: slog.New(slog.NewJSONHandler(io.Discard, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	codec, err := authn.NewSessionCodec(cookies)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	sealed, err := codec.Seal(&authn.Session{
		ID: authn.NewSessionID(), IssuedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour),
		Principal: identity.Principal{Kind: identity.KindUser, ID: "https://idp#alice", Issuer: "https://idp", Subject: "alice",
			Email: "alice@example.com", Groups: []string{"eng", "staff", "vpn-users"}, AMR: []string{"pwd"}, AuthTime: now, IdP: "corp"},
	}, now)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "https://web.example.com/dashboard?tab=1", nil)
	req.RemoteAddr = "203.0.113.7:5555"
	for _, c := range sealed {
		req.AddCookie(c)
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0")
	req.Header.Set("Accept", "text/html")
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req.WithContext(context.Background()))
	}
}
