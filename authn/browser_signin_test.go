package authn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ztproxy/identity"
	"ztproxy/internal/testenv"
)

// signInFixture is browser sign-in against a hostile IdP whose ID tokens
// the test edits; the browser's clock runs offset from real time.
type signInFixture struct {
	b        *Browser
	idp      *testenv.HostileIdP
	sessions *memSessions
	offset   atomic.Int64
	logs     bytes.Buffer
}

func newSignInFixture(t *testing.T) *signInFixture {
	t.Helper()
	f := &signInFixture{
		idp:      testenv.StartHostileIdP(t, testenv.NewRSASigningKey(t, "k1", 0)),
		sessions: &memSessions{recs: map[string]SessionRecord{}, revoked: map[string]bool{}},
	}
	ext, _ := url.Parse(testOrigin)
	b, err := NewBrowser(BrowserConfig{
		IdPs:        []BrowserIdPConfig{{Name: "corp", Issuer: f.idp.Issuer, ClientID: f.idp.ClientID, ClientSecret: "s"}},
		ExternalURL: ext,
		Cookies:     SessionCodecConfig{CookieName: "_ztp", Secrets: [][]byte{testSecret(9)}},
		Store:       f.sessions,
		Now:         func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) },
		Logger:      slog.New(slog.NewTextHandler(&f.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.b = b
	return f
}

// signIn runs /.ztp/login → the IdP's authorize endpoint → /.ztp/callback.
func (f *signInFixture) signIn(t *testing.T) (CallbackResult, error) {
	t.Helper()
	ctx := context.Background()
	authURL, cookies, err := f.b.LoginRedirect(ctx, httptest.NewRequest("GET", testOrigin+LoginPath, nil), "", "/", LoginOptions{MaxAge: -1})
	if err != nil {
		t.Fatalf("LoginRedirect: %v", err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	callback := httptest.NewRequest("GET", resp.Header.Get("Location"), nil)
	for _, c := range cookies {
		callback.AddCookie(c)
	}
	return f.b.Callback(ctx, callback, identity.Device{})
}

// TestSignInRequiredIDTokenClaims: an ID token missing any claim OpenID
// Connect Core section 2 requires (or with the wrong nonce, or iat in the
// future) ends the sign-in without a session.
// Issue 12.9: an ID token without iat was accepted at sign-in.
func TestSignInRequiredIDTokenClaims(t *testing.T) {
	f := newSignInFixture(t)
	for _, tc := range []struct {
		name string
		edit func(c map[string]any)
		code string
	}{
		{"complete", func(map[string]any) {}, ""},
		{"no iss", func(c map[string]any) { delete(c, "iss") }, "invalid_id_token"},
		{"no sub", func(c map[string]any) { delete(c, "sub") }, "invalid_claims"},
		{"no aud", func(c map[string]any) { delete(c, "aud") }, "invalid_id_token"},
		{"no exp", func(c map[string]any) { delete(c, "exp") }, "invalid_id_token"},
		{"no iat", func(c map[string]any) { delete(c, "iat") }, "invalid_claims"},
		{"iat in the future", func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }, "invalid_claims"},
		{"no nonce", func(c map[string]any) { delete(c, "nonce") }, "nonce_mismatch"},
		{"other nonce", func(c map[string]any) { c["nonce"] = "replayed" }, "nonce_mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.idp.EditIDTokens(tc.edit)
			res, err := f.signIn(t)
			if tc.code == "" {
				if err != nil || res.Principal.Subject != "alice" {
					t.Fatalf("complete ID token: %v %+v", err, res.Principal)
				}
				return
			}
			var sie *SignInError
			if !errors.As(err, &sie) || sie.Code != tc.code {
				t.Fatalf("error %v, want sign-in error %s", err, tc.code)
			}
			for _, c := range res.Cookies {
				if c.Name == "_ztp" && c.MaxAge >= 0 {
					t.Errorf("session cookie set on a refused sign-in: %v", c)
				}
			}
		})
	}
}

// TestSignInAndRefreshDropBadEmail: the email check applies to ID tokens
// at sign-in and after a refresh.
// Issue 12.7.
func TestSignInAndRefreshDropBadEmail(t *testing.T) {
	f := newSignInFixture(t)
	f.idp.SetUser(testenv.HostileUser{Sub: "alice", Email: "a@evil.test@corp.test"})
	res, err := f.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	if res.Principal.Email != "" || res.Principal.EmailVerified {
		t.Fatalf("sign-in principal email %q verified %v, want dropped", res.Principal.Email, res.Principal.EmailVerified)
	}
	// The IdP now reports a good address; a refresh picks it up...
	f.idp.SetUser(testenv.HostileUser{Sub: "alice", Email: "alice@corp.test"})
	f.offset.Store(int64(4*time.Minute + 30*time.Second))
	refreshed := f.authenticate(t, res.Cookies)
	if refreshed.Principal.Email != "alice@corp.test" || !refreshed.Principal.EmailVerified {
		t.Fatalf("after refresh: email %q verified %v", refreshed.Principal.Email, refreshed.Principal.EmailVerified)
	}
	// ...and a bad one in a later refresh is dropped again.
	f.idp.SetUser(testenv.HostileUser{Sub: "alice", Email: "x@evil.test y@corp.test"})
	f.idp.EditIDTokens(func(c map[string]any) { c["exp"] = time.Now().Add(time.Hour).Unix() })
	f.offset.Store(int64(9 * time.Minute))
	again := f.authenticate(t, refreshed.SetCookies)
	if again.Principal.Email != "" || again.Principal.EmailVerified {
		t.Errorf("after a refresh with a bad email: %q verified %v", again.Principal.Email, again.Principal.EmailVerified)
	}
	if !strings.Contains(f.logs.String(), "email claim dropped") {
		t.Errorf("drop not logged: %s", f.logs.String())
	}
}

func (f *signInFixture) authenticate(t *testing.T, cookies []*http.Cookie) Result {
	t.Helper()
	r := httptest.NewRequest("GET", testOrigin+"/", nil)
	for _, c := range cookies {
		if c.MaxAge >= 0 {
			r.AddCookie(c)
		}
	}
	res, err := f.b.Authenticate(context.Background(), r, identity.Device{})
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if len(res.SetCookies) == 0 {
		t.Fatal("no refreshed cookie")
	}
	return res
}
