package authn

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"ztproxy/identity"
)

// memSessions is an in-memory SessionStore.
type memSessions struct {
	mu      sync.Mutex
	recs    map[string]SessionRecord
	revoked map[string]bool
}

func (m *memSessions) SaveSession(_ context.Context, rec SessionRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[rec.ID] = rec
	return nil
}

func (m *memSessions) LoadSession(_ context.Context, id string) (SessionRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[id]
	switch {
	case !ok:
		return SessionRecord{}, ErrSessionNotFound
	case m.revoked[id]:
		return SessionRecord{}, ErrSessionRevoked
	}
	return rec, nil
}

func (m *memSessions) RevokeSession(_ context.Context, id string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revoked[id] = true
	return nil
}

func (m *memSessions) UpdateSessionTokens(context.Context, string, string, string, time.Time) error {
	return nil
}

func (m *memSessions) IsRevoked(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.recs[id]
	return !ok || m.revoked[id], nil
}

type browserKeysFixture struct {
	b        *Browser
	sessions *memSessions
	keys     *memWebAuthnStore
	now      time.Time
}

func newBrowserKeysFixture(t *testing.T) *browserKeysFixture {
	t.Helper()
	f := &browserKeysFixture{
		sessions: &memSessions{recs: map[string]SessionRecord{}, revoked: map[string]bool{}},
		keys:     &memWebAuthnStore{},
		now:      time.Now().UTC().Truncate(time.Second),
	}
	ext, _ := url.Parse(testOrigin)
	b, err := NewBrowser(BrowserConfig{
		IdPs:        []BrowserIdPConfig{{Name: "corp", Issuer: "https://idp.example.com", ClientID: "c", ClientSecret: "s"}},
		ExternalURL: ext,
		Cookies:     SessionCodecConfig{CookieName: "_ztp", Secrets: [][]byte{testSecret(7)}},
		Store:       f.sessions,
		Now:         func() time.Time { return f.now },
		WebAuthn:    &WebAuthnConfig{RPID: testRPID, RPOrigins: []string{testOrigin}, Store: f.keys, EnrollMaxAge: 5 * time.Minute},
	})
	if err != nil {
		t.Fatalf("NewBrowser: %v", err)
	}
	f.b = b
	return f
}

// signIn creates a session for name, authenticated authAge ago with amr,
// and returns its cookies and principal.
func (f *browserKeysFixture) signIn(t *testing.T, name string, authAge time.Duration, amr ...string) ([]*http.Cookie, identity.Principal) {
	t.Helper()
	p := testUser(name)
	p.AuthTime, p.AMR = f.now.Add(-authAge), amr
	sess := &Session{ID: NewSessionID(), Principal: p, IssuedAt: f.now, LastSeen: f.now, ExpiresAt: f.now.Add(time.Hour)}
	_ = f.sessions.SaveSession(context.Background(), SessionRecord{ID: sess.ID, UserID: p.ID, IdP: "corp", RefreshToken: "rt-" + name, ExpiresAt: sess.ExpiresAt})
	cookies, err := f.b.codec.Seal(sess, f.now)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.b.Authenticate(context.Background(), finishRequest(nil, cookies...), identity.Device{})
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return cookies, res.Principal
}

// enroll registers key for p through the Browser.
func (f *browserKeysFixture) enroll(t *testing.T, p identity.Principal, key *softAuthenticator) {
	t.Helper()
	opts, state, err := f.b.BeginEnroll(context.Background(), p)
	if err != nil {
		t.Fatalf("BeginEnroll: %v", err)
	}
	if _, _, err := f.b.FinishEnroll(context.Background(), p, finishRequest(key.create(t, opts), state)); err != nil {
		t.Fatalf("FinishEnroll: %v", err)
	}
}

func TestCheckKeyChange(t *testing.T) {
	f := newBrowserKeysFixture(t)
	ctx := context.Background()
	_, fresh := f.signIn(t, "alice", time.Minute, "pwd")
	_, stale := f.signIn(t, "alice", 10*time.Minute, "pwd")
	if err := f.b.CheckKeyChange(ctx, stale); !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("first key, stale sign-in: %v", err)
	}
	if _, _, err := f.b.BeginEnroll(ctx, stale); !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("BeginEnroll with a stale sign-in: %v", err)
	}
	if err := f.b.CheckKeyChange(ctx, fresh); err != nil {
		t.Fatalf("first key, fresh sign-in: %v", err)
	}
	f.enroll(t, fresh, newSoftAuthenticator(t))

	// With a key, a fresh password sign-in no longer changes keys: a
	// stolen password must not replace the user's keys.
	if err := f.b.CheckKeyChange(ctx, fresh); !errors.Is(err, ErrKeyVerificationRequired) {
		t.Fatalf("second key after a password sign-in: %v", err)
	}
	if _, _, err := f.b.BeginEnroll(ctx, fresh); !errors.Is(err, ErrKeyVerificationRequired) {
		t.Fatalf("BeginEnroll: %v", err)
	}
	keys, _ := f.b.SecurityKeys(ctx, fresh)
	if err := f.b.RemoveSecurityKey(ctx, fresh, keys[0].ID); !errors.Is(err, ErrKeyVerificationRequired) {
		t.Fatalf("removal after a password sign-in: %v", err)
	}
	_, verified := f.signIn(t, "alice", time.Minute, "pwd", "hwk", "webauthn")
	_, oldVerified := f.signIn(t, "alice", 6*time.Minute, "pwd", "hwk", "webauthn")
	if err := f.b.CheckKeyChange(ctx, oldVerified); !errors.Is(err, ErrKeyVerificationRequired) {
		t.Fatalf("key verification too old: %v", err)
	}
	if err := f.b.RemoveSecurityKey(ctx, verified, keys[0].ID); err != nil {
		t.Fatalf("removal after key verification: %v", err)
	}
	if keys, _ := f.b.SecurityKeys(ctx, verified); len(keys) != 0 {
		t.Fatalf("%d keys left", len(keys))
	}
}

func TestFinishWebAuthnStepUpUpgradesAndRotates(t *testing.T) {
	f := newBrowserKeysFixture(t)
	ctx := context.Background()
	cookies, alice := f.signIn(t, "alice", time.Minute, "pwd")
	key := newSoftAuthenticator(t)
	f.enroll(t, alice, key)
	f.now = f.now.Add(20 * time.Minute) // the IdP sign-in is old now

	opts, state, err := f.b.BeginWebAuthnStepUp(ctx, alice)
	if err != nil {
		t.Fatalf("BeginWebAuthnStepUp: %v", err)
	}
	body := key.get(t, opts)
	res, err := f.b.FinishWebAuthnStepUp(ctx, finishRequest(body, append(slices.Clone(cookies), state)...), identity.Device{})
	if err != nil {
		t.Fatalf("FinishWebAuthnStepUp: %v", err)
	}
	p := res.Principal
	if !p.HasMFA() || !slices.Contains(p.AMR, "webauthn") || !slices.Contains(p.AMR, "hwk") || !p.AuthTime.Equal(f.now) {
		t.Fatalf("upgraded principal: amr %v auth_time %v (now %v)", p.AMR, p.AuthTime, f.now)
	}
	if p.SessionID == alice.SessionID || p.SessionID == "" {
		t.Fatalf("session id not rotated: %q", p.SessionID)
	}
	if rec, err := f.sessions.LoadSession(ctx, p.SessionID); err != nil || rec.RefreshToken != "rt-alice" || rec.UserID != alice.ID {
		t.Fatalf("new server-side session: %+v %v", rec, err)
	}
	if _, err := f.sessions.LoadSession(ctx, alice.SessionID); !errors.Is(err, ErrSessionRevoked) {
		t.Fatalf("old session not revoked: %v", err)
	}
	var newCookies []*http.Cookie
	for _, c := range res.Cookies {
		if c.MaxAge >= 0 && c.Name == "_ztp" {
			newCookies = append(newCookies, c)
		}
	}
	got, err := f.b.Authenticate(ctx, finishRequest(nil, newCookies...), identity.Device{})
	if err != nil || got.Principal.SessionID != p.SessionID || !slices.Contains(got.Principal.AMR, "webauthn") {
		t.Fatalf("new cookie: %+v %v", got.Principal, err)
	}

	// Replaying the whole finish request (old cookie, state, assertion)
	// fails: the old session is gone.
	_, err = f.b.FinishWebAuthnStepUp(ctx, finishRequest(body, append(slices.Clone(cookies), state)...), identity.Device{})
	if lre := (*LoginRequiredError)(nil); !errors.As(err, &lre) {
		t.Fatalf("replay with the old cookie: %v", err)
	}
	// With the new cookie the old ceremony state belongs to another session.
	_, err = f.b.FinishWebAuthnStepUp(ctx, finishRequest(body, append(slices.Clone(newCookies), state)...), identity.Device{})
	if !errors.Is(err, ErrWebAuthnState) {
		t.Fatalf("old state with the new session: %v", err)
	}
}

func TestFinishWebAuthnStepUpRejectsForeignKey(t *testing.T) {
	f := newBrowserKeysFixture(t)
	ctx := context.Background()
	cookies, alice := f.signIn(t, "alice", time.Minute)
	f.enroll(t, alice, newSoftAuthenticator(t))
	stranger := newSoftAuthenticator(t) // never enrolled
	opts, state, err := f.b.BeginWebAuthnStepUp(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.b.FinishWebAuthnStepUp(ctx, finishRequest(stranger.get(t, opts), append(slices.Clone(cookies), state)...), identity.Device{})
	if !errors.Is(err, ErrWebAuthnVerify) {
		t.Fatalf("unenrolled key: %v", err)
	}
	if _, err := f.sessions.LoadSession(ctx, alice.SessionID); err != nil || len(f.sessions.recs) != 1 {
		t.Fatalf("session changed by a failed step-up: %v (%d sessions)", err, len(f.sessions.recs))
	}
	// No cookies at all: sign in again, not a 500.
	_, err = f.b.FinishWebAuthnStepUp(ctx, finishRequest(nil, state), identity.Device{})
	if lre := (*LoginRequiredError)(nil); !errors.As(err, &lre) {
		t.Fatalf("no session: %v", err)
	}
}
