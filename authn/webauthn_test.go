package authn

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"ztproxy/identity"
)

const (
	testRPID   = "auth.example.com"
	testOrigin = "https://auth.example.com"
)

var errTestSignCount = errors.New("sign count did not increase")

func TestWebAuthnRegisterAndLogin(t *testing.T) {
	f := newWebAuthnFixture(t)
	alice := testUser("alice")
	key := newSoftAuthenticator(t)
	cred := f.register(t, alice, key)
	if cred.UserID != alice.ID || !bytes.Equal(cred.ID, key.id) || len(cred.PublicKey) == 0 || cred.CreatedAt.IsZero() {
		t.Fatalf("registered credential = %+v", cred)
	}
	if !slices.Equal(cred.Transports, []string{"usb"}) {
		t.Errorf("transports = %v", cred.Transports)
	}
	stored, _ := f.store.ListCredentials(context.Background(), alice.ID)
	if len(stored) != 1 {
		t.Fatalf("stored %d credentials", len(stored))
	}

	body, state, used, err := f.login(t, alice, key)
	if err != nil {
		t.Fatalf("FinishLogin: %v", err)
	}
	if !bytes.Equal(used.ID, key.id) || used.SignCount != 1 {
		t.Errorf("used credential = %+v", used)
	}
	stored, _ = f.store.ListCredentials(context.Background(), alice.ID)
	if stored[0].SignCount != 1 {
		t.Errorf("stored sign count = %d", stored[0].SignCount)
	}

	// The same assertion again (same counter) is a replay.
	if _, err := f.w.FinishLogin(context.Background(), alice, finishRequest(body, state)); !errors.Is(err, ErrWebAuthnSignCount) {
		t.Errorf("replayed assertion: err = %v, want ErrWebAuthnSignCount", err)
	}
	// A fresh ceremony with a higher counter works again.
	if _, _, _, err := f.login(t, alice, key); err != nil {
		t.Errorf("second login: %v", err)
	}
	// A counter that goes backwards (cloned key) fails.
	key.count = 0
	if _, _, _, err := f.login(t, alice, key); !errors.Is(err, ErrWebAuthnSignCount) {
		t.Errorf("regressed counter: err = %v, want ErrWebAuthnSignCount", err)
	}
}

func TestWebAuthnCounterlessAuthenticator(t *testing.T) {
	f := newWebAuthnFixture(t)
	alice := testUser("alice")
	key := newSoftAuthenticator(t)
	key.step = 0
	f.register(t, alice, key)
	for i := range 2 {
		if _, _, _, err := f.login(t, alice, key); err != nil {
			t.Fatalf("login %d with a zero counter: %v", i, err)
		}
	}
}

func TestWebAuthnLoginRejects(t *testing.T) {
	ctx := context.Background()
	alice, bob := testUser("alice"), testUser("bob")
	tests := []struct {
		name    string
		prepare func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie)
		want    error
		why     string
	}{
		{"wrong origin", func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			opts, st, _ := f.w.BeginLogin(ctx, alice)
			key.origin = "https://evil.example.com"
			return alice, key.get(t, opts), st
		}, ErrWebAuthnVerify, "Error validating origin"},
		{"wrong rp id", func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			opts, st, _ := f.w.BeginLogin(ctx, alice)
			key.rpID = "evil.example.com"
			return alice, key.get(t, opts), st
		}, ErrWebAuthnVerify, "RP Hash mismatch"},
		{"no user verification", func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			opts, st, _ := f.w.BeginLogin(ctx, alice)
			key.flags = flagUP
			return alice, key.get(t, opts), st
		}, ErrWebAuthnVerify, "User verification required"},
		{"credential not registered", func(t *testing.T, f *webauthnFixture, _ *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			opts, st, _ := f.w.BeginLogin(ctx, alice)
			return alice, newSoftAuthenticator(t).get(t, opts), st
		}, ErrWebAuthnVerify, "not registered for this user"},
		{"another user's credential", func(t *testing.T, f *webauthnFixture, _ *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			bobKey := newSoftAuthenticator(t)
			f.register(t, bob, bobKey)
			opts, st, _ := f.w.BeginLogin(ctx, alice)
			return alice, bobKey.get(t, opts), st
		}, ErrWebAuthnVerify, "not registered for this user"},
		{"challenge of another ceremony", func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			opts, _, _ := f.w.BeginLogin(ctx, alice)
			_, st, _ := f.w.BeginLogin(ctx, alice)
			return alice, key.get(t, opts), st
		}, ErrWebAuthnVerify, "Error validating challenge"},
		{"state of another user", func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			f.register(t, bob, newSoftAuthenticator(t))
			opts, st, _ := f.w.BeginLogin(ctx, bob)
			return alice, key.get(t, opts), st
		}, ErrWebAuthnState, "another user"},
		{"state of another session", func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			other := alice
			other.SessionID = "session-stolen"
			opts, st, _ := f.w.BeginLogin(ctx, other)
			return alice, key.get(t, opts), st
		}, ErrWebAuthnState, "another session"},
		{"registration state", func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			opts, st, _ := f.w.BeginRegistration(ctx, alice)
			st.Name = f.w.stateCookieName(webauthnLogin)
			return alice, key.get(t, opts), st
		}, ErrWebAuthnState, "not sealed"},
		{"expired state", func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			opts, st, _ := f.w.BeginLogin(ctx, alice)
			f.now = f.now.Add(WebAuthnStateTTL + time.Second)
			return alice, key.get(t, opts), st
		}, ErrWebAuthnState, "expired"},
		{"no state", func(t *testing.T, f *webauthnFixture, key *softAuthenticator) (identity.Principal, []byte, *http.Cookie) {
			opts, _, _ := f.w.BeginLogin(ctx, alice)
			return alice, key.get(t, opts), &http.Cookie{Name: "other", Value: "x"}
		}, ErrWebAuthnState, "no login state cookie"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newWebAuthnFixture(t)
			key := newSoftAuthenticator(t)
			f.register(t, alice, key)
			p, body, st := tc.prepare(t, f, key)
			_, err := f.w.FinishLogin(ctx, p, finishRequest(body, st))
			if !errors.Is(err, tc.want) {
				t.Fatalf("FinishLogin: err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("FinishLogin: err = %v, want it to say %q", err, tc.why)
			}
			stored, _ := f.store.ListCredentials(ctx, alice.ID)
			if stored[0].SignCount != 0 {
				t.Errorf("a failed login changed the sign count to %d", stored[0].SignCount)
			}
		})
	}
}

func TestWebAuthnRegistrationRejects(t *testing.T) {
	ctx := context.Background()
	alice, bob := testUser("alice"), testUser("bob")
	t.Run("state of another user", func(t *testing.T) {
		f := newWebAuthnFixture(t)
		opts, st, err := f.w.BeginRegistration(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.w.FinishRegistration(ctx, alice, finishRequest(newSoftAuthenticator(t).create(t, opts), st))
		if !errors.Is(err, ErrWebAuthnState) {
			t.Fatalf("err = %v, want ErrWebAuthnState", err)
		}
	})
	t.Run("wrong origin", func(t *testing.T) {
		f := newWebAuthnFixture(t)
		opts, st, _ := f.w.BeginRegistration(ctx, alice)
		key := newSoftAuthenticator(t)
		key.origin = "https://evil.example.com"
		if _, err := f.w.FinishRegistration(ctx, alice, finishRequest(key.create(t, opts), st)); !errors.Is(err, ErrWebAuthnVerify) || !strings.Contains(err.Error(), "Error validating origin") {
			t.Fatalf("err = %v, want ErrWebAuthnVerify", err)
		}
	})
	t.Run("wrong rp id", func(t *testing.T) {
		f := newWebAuthnFixture(t)
		opts, st, _ := f.w.BeginRegistration(ctx, alice)
		key := newSoftAuthenticator(t)
		key.rpID = "evil.example.com"
		if _, err := f.w.FinishRegistration(ctx, alice, finishRequest(key.create(t, opts), st)); !errors.Is(err, ErrWebAuthnVerify) || !strings.Contains(err.Error(), "RP Hash mismatch") {
			t.Fatalf("err = %v, want ErrWebAuthnVerify", err)
		}
	})
	t.Run("no user verification", func(t *testing.T) {
		f := newWebAuthnFixture(t)
		opts, st, _ := f.w.BeginRegistration(ctx, alice)
		key := newSoftAuthenticator(t)
		key.flags = flagUP
		if _, err := f.w.FinishRegistration(ctx, alice, finishRequest(key.create(t, opts), st)); !errors.Is(err, ErrWebAuthnVerify) || !strings.Contains(err.Error(), "User verification required") {
			t.Fatalf("err = %v, want ErrWebAuthnVerify", err)
		}
	})
	t.Run("already registered", func(t *testing.T) {
		f := newWebAuthnFixture(t)
		key := newSoftAuthenticator(t)
		f.register(t, alice, key)
		opts, st, _ := f.w.BeginRegistration(ctx, alice)
		if _, err := f.w.FinishRegistration(ctx, alice, finishRequest(key.create(t, opts), st)); !errors.Is(err, ErrWebAuthnVerify) || !strings.Contains(err.Error(), "already registered") {
			t.Fatalf("registering the same credential twice: err = %v", err)
		}
	})
	t.Run("login state", func(t *testing.T) {
		f := newWebAuthnFixture(t)
		f.register(t, alice, newSoftAuthenticator(t))
		opts, st, _ := f.w.BeginLogin(ctx, alice)
		st.Name = f.w.stateCookieName(webauthnRegister)
		if _, err := f.w.FinishRegistration(ctx, alice, finishRequest(newSoftAuthenticator(t).create(t, opts), st)); !errors.Is(err, ErrWebAuthnState) {
			t.Fatalf("err = %v, want ErrWebAuthnState", err)
		}
	})
}

func TestWebAuthnOptions(t *testing.T) {
	ctx := context.Background()
	f := newWebAuthnFixture(t)
	alice := testUser("alice")

	if _, _, err := f.w.BeginLogin(ctx, alice); !errors.Is(err, ErrWebAuthnNoCredentials) {
		t.Fatalf("BeginLogin without credentials: err = %v", err)
	}
	if _, _, err := f.w.BeginRegistration(ctx, identity.Principal{Kind: identity.KindService, ID: "svc"}); err == nil {
		t.Fatal("BeginRegistration for a service succeeded")
	}

	key := newSoftAuthenticator(t)
	f.register(t, alice, key)

	raw, st, err := f.w.BeginRegistration(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	var creation struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		User struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		AuthenticatorSelection struct {
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		ExcludeCredentials []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"excludeCredentials"`
		Attestation string `json:"attestation"`
	}
	if err := json.Unmarshal(raw, &creation); err != nil {
		t.Fatal(err)
	}
	if ch, err := base64.RawURLEncoding.DecodeString(creation.Challenge); err != nil || len(ch) < 16 {
		t.Errorf("challenge = %q", creation.Challenge)
	}
	if creation.RP.ID != testRPID || creation.RP.Name != "Example" {
		t.Errorf("rp = %+v", creation.RP)
	}
	if creation.User.ID != b64(WebAuthnUserHandle(alice.ID)) || creation.User.Name != alice.Email {
		t.Errorf("user = %+v", creation.User)
	}
	if creation.AuthenticatorSelection.UserVerification != "required" {
		t.Errorf("userVerification = %q", creation.AuthenticatorSelection.UserVerification)
	}
	if len(creation.ExcludeCredentials) != 1 || creation.ExcludeCredentials[0].ID != b64(key.id) || creation.ExcludeCredentials[0].Type != "public-key" {
		t.Errorf("excludeCredentials = %+v", creation.ExcludeCredentials)
	}
	if creation.Attestation != "none" {
		t.Errorf("attestation = %q", creation.Attestation)
	}
	if !st.HttpOnly || !st.Secure || st.SameSite != http.SameSiteStrictMode || st.MaxAge != 300 || st.Path == "" {
		t.Errorf("state cookie = %+v", st)
	}

	raw, st2, err := f.w.BeginLogin(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	var request struct {
		Challenge        string `json:"challenge"`
		RPID             string `json:"rpId"`
		UserVerification string `json:"userVerification"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	}
	if err := json.Unmarshal(raw, &request); err != nil {
		t.Fatal(err)
	}
	if ch, err := base64.RawURLEncoding.DecodeString(request.Challenge); err != nil || len(ch) < 16 || request.Challenge == creation.Challenge {
		t.Errorf("challenge = %q", request.Challenge)
	}
	if request.RPID != testRPID || request.UserVerification != "required" {
		t.Errorf("request options = %s", raw)
	}
	if len(request.AllowCredentials) != 1 || request.AllowCredentials[0].ID != b64(key.id) {
		t.Errorf("allowCredentials = %+v", request.AllowCredentials)
	}
	if st2.Name == st.Name {
		t.Errorf("registration and login share the state cookie %q", st.Name)
	}
	// The state cookies must not look like login state cookies, which
	// PruneLoginStates would delete.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(st)
	r.AddCookie(st2)
	if pruned := f.w.cfg.Codec.PruneLoginStates(r, f.now); len(pruned) != 0 {
		t.Errorf("PruneLoginStates deletes %v", pruned)
	}
}

func TestNewWebAuthnValidates(t *testing.T) {
	codec := newTestCodec(t, nil)
	store := &memWebAuthnStore{}
	for name, cfg := range map[string]WebAuthnConfig{
		"no store":   {RPID: testRPID, RPOrigins: []string{testOrigin}, Codec: codec},
		"no codec":   {RPID: testRPID, RPOrigins: []string{testOrigin}, Store: store},
		"no origins": {RPID: testRPID, Store: store, Codec: codec},
		"no rp id":   {RPOrigins: []string{testOrigin}, Store: store, Codec: codec},
	} {
		if _, err := NewWebAuthn(cfg); err == nil {
			t.Errorf("%s: NewWebAuthn succeeded", name)
		}
	}
}

func TestUpgradeSession(t *testing.T) {
	old := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s := &Session{ID: "sid", Principal: identity.Principal{
		Kind: identity.KindUser, ID: "u", AMR: []string{"pwd", "hwk"}, AuthTime: old,
		Groups: []string{"g"}, Claims: map[string]string{"k": "v"},
	}}
	now := old.Add(time.Hour + 500*time.Millisecond)
	up := UpgradeSession(s, now)
	if !slices.Equal(up.Principal.AMR, []string{"pwd", "hwk", "webauthn"}) {
		t.Errorf("amr = %v", up.Principal.AMR)
	}
	if !up.Principal.AuthTime.Equal(now.Truncate(time.Second)) {
		t.Errorf("auth time = %v", up.Principal.AuthTime)
	}
	if !up.Principal.HasMFA() || up.ID != "sid" {
		t.Errorf("upgraded session = %+v", up)
	}
	// The original is untouched.
	if !slices.Equal(s.Principal.AMR, []string{"pwd", "hwk"}) || !s.Principal.AuthTime.Equal(old) {
		t.Errorf("original changed: %+v", s.Principal)
	}
	up.Principal.Claims["k"] = "changed"
	up.Principal.Groups[0] = "changed"
	if s.Principal.Claims["k"] != "v" || s.Principal.Groups[0] != "g" {
		t.Error("upgraded session shares maps or slices with the original")
	}
	if again := UpgradeSession(up, now); len(again.Principal.AMR) != 3 {
		t.Errorf("upgrading twice: amr = %v", again.Principal.AMR)
	}
	if UpgradeSession(nil, now) != nil {
		t.Error("UpgradeSession(nil) != nil")
	}
}
