package authn_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/authn"
	"ztproxy/config"
	"ztproxy/internal/testenv"
	"ztproxy/store"
)

// backchannelFixture is browser sign-in against a hostile IdP whose keys
// the test holds, over the real session store adapter and embedded store.
type backchannelFixture struct {
	b   *authn.Browser
	idp *testenv.HostileIdP
	key *testenv.SigningKey
	st  *store.Bolt
	ss  authn.SessionStore
}

func newBackchannelFixture(t *testing.T) *backchannelFixture {
	t.Helper()
	f := &backchannelFixture{key: testenv.NewRSASigningKey(t, "k1", 0)}
	f.idp = testenv.StartHostileIdP(t, f.key)
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st, f.ss = st, config.SessionStore(st, time.Minute, nil)
	ext, _ := url.Parse("https://proxy.test")
	f.b, err = authn.NewBrowser(authn.BrowserConfig{
		IdPs:        []authn.BrowserIdPConfig{{Name: "corp", Issuer: f.idp.Issuer, ClientID: f.idp.ClientID, ClientSecret: "s"}},
		ExternalURL: ext,
		Cookies:     authn.SessionCodecConfig{CookieName: "_ztp", Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}},
		Store:       f.ss,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// session stores a live session of sub with the IdP session sid.
func (f *backchannelFixture) session(t *testing.T, id, sub, sid string) {
	t.Helper()
	err := f.st.PutSession(context.Background(), store.SessionRecord{ID: id, UserID: f.idp.Issuer + "#" + sub, IdP: "corp", SID: sid,
		ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *backchannelFixture) revoked(t *testing.T, id string) bool {
	t.Helper()
	r, err := f.ss.IsRevoked(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// logoutClaims are valid logout token claims for sub and sid.
func (f *backchannelFixture) logoutClaims(sub, sid string) map[string]any {
	c := map[string]any{
		"iss": f.idp.Issuer, "aud": f.idp.ClientID, "iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Minute).Unix(),
		"jti":    "jti-" + strings.ReplaceAll(time.Now().Format(time.RFC3339Nano), ":", ""),
		"events": map[string]any{authn.BackchannelEvent: map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// TestBackchannelLogoutToken: issue 17, OIDC Back-Channel Logout 1.0
// §2.6. A valid logout token ends the sessions of its sid (or, with only
// sub, every session of the user); a replayed one, and every token that
// breaks a rule, is refused (400) and ends nothing.
func TestBackchannelLogoutToken(t *testing.T) {
	f := newBackchannelFixture(t)
	ctx := context.Background()
	f.session(t, "s-sid1", "alice", "sid-1")
	f.session(t, "s-sid2", "alice", "sid-2")
	f.session(t, "s-bob", "bob", "sid-3")

	other := testenv.NewECSigningKey(t, "k2") // an unpublished key
	bad := map[string]string{}
	mk := func(name string, edit func(c map[string]any)) {
		c := f.logoutClaims("alice", "sid-2")
		edit(c)
		bad[name] = testenv.Token(f.key, c)
	}
	bad["unknown key"] = testenv.Token(other, f.logoutClaims("alice", "sid-2"))
	valid := testenv.Token(f.key, f.logoutClaims("alice", "sid-2"))
	bad["bad signature"] = valid[:len(valid)-6] + "AAAAAA"
	bad["alg none"] = testenv.UnsignedToken(nil, f.logoutClaims("alice", "sid-2"))
	bad["typ at+jwt"] = testenv.TokenWithHeader(f.key, map[string]any{"typ": "at+jwt"}, f.logoutClaims("alice", "sid-2"))
	bad["oversized"] = strings.Repeat("a", authn.MaxLogoutTokenBytes+1)
	bad["not a JWT"] = "not-a-jwt"
	mk("wrong aud", func(c map[string]any) { c["aud"] = "someone-else" })
	mk("wrong iss", func(c map[string]any) { c["iss"] = "https://evil.test" })
	mk("no events", func(c map[string]any) { delete(c, "events") })
	mk("other event", func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} })
	mk("event not an object", func(c map[string]any) { c["events"] = map[string]any{authn.BackchannelEvent: "yes"} })
	mk("nonce", func(c map[string]any) { c["nonce"] = "n" })
	mk("neither sub nor sid", func(c map[string]any) { delete(c, "sub"); delete(c, "sid") })
	mk("no jti", func(c map[string]any) { delete(c, "jti") })
	mk("no iat", func(c map[string]any) { delete(c, "iat") })
	mk("iat in the future", func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() })
	mk("iat too old", func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() })
	mk("expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	for name, raw := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := f.b.BackchannelLogout(ctx, raw)
			var be *authn.BackchannelError
			if !errors.As(err, &be) {
				t.Fatalf("got %v, want a *BackchannelError", err)
			}
			if f.revoked(t, "s-sid2") {
				t.Fatal("a refused token ended a session")
			}
		})
	}

	good := testenv.Token(f.key, f.logoutClaims("alice", "sid-2"))
	res, err := f.b.BackchannelLogout(ctx, good)
	if err != nil || res.Sessions != 1 || res.SID != "sid-2" {
		t.Fatalf("valid sid token: %+v, %v", res, err)
	}
	if !f.revoked(t, "s-sid2") || f.revoked(t, "s-sid1") || f.revoked(t, "s-bob") {
		t.Fatal("sid logout ended the wrong sessions")
	}
	var be *authn.BackchannelError
	if _, err := f.b.BackchannelLogout(ctx, good); !errors.As(err, &be) || !strings.Contains(be.Description, "replayed") {
		t.Fatalf("replayed token: %v", err)
	}
	time.Sleep(time.Millisecond) // a new jti
	subOnly := testenv.TokenWithHeader(f.key, map[string]any{"typ": "logout+jwt"}, f.logoutClaims("alice", ""))
	if res, err := f.b.BackchannelLogout(ctx, subOnly); err != nil || res.Sessions != 1 || !f.revoked(t, "s-sid1") {
		t.Fatalf("sub-only token: %+v, %v", res, err)
	}
	if f.revoked(t, "s-bob") {
		t.Fatal("bob's session ended with alice's")
	}
}
