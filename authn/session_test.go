package authn

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ztproxy/identity"
)

// sessionTestNow is the fixed clock of the session tests.
var sessionTestNow = time.Date(2031, 3, 14, 9, 26, 53, 0, time.UTC)

func testSecret(fill byte) []byte { return bytes.Repeat([]byte{fill}, 32) }

func newTestCodec(t testing.TB, mutate func(*SessionCodecConfig)) *SessionCodec {
	t.Helper()
	cfg := SessionCodecConfig{CookieName: "_ztp", Secrets: [][]byte{testSecret(1)}}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := NewSessionCodec(cfg)
	if err != nil {
		t.Fatalf("NewSessionCodec: %v", err)
	}
	return c
}

// typicalSession is a Cognito user with 10 groups, MFA and a device: the
// size the 1.5 KB budget is about.
func typicalSession(groups int) *Session {
	issuer := "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI"
	subject := "3f9c1a52-7d4e-4b8a-9c21-0e5f6a7b8c9d"
	s := &Session{
		ID: NewSessionID(),
		Principal: identity.Principal{
			Kind:          identity.KindUser,
			ID:            identity.UserID(issuer, subject),
			Issuer:        issuer,
			Subject:       subject,
			Email:         "ada.lovelace@example.com",
			EmailVerified: true,
			Name:          "Ada Lovelace",
			AMR:           []string{"pwd", "mfa"},
			ACR:           "urn:example:loa:2",
			AuthTime:      sessionTestNow.Add(-time.Minute),
			IdP:           "cognito",
		},
		DeviceFingerprint: strings.Repeat("ab", 32),
		IssuedAt:          sessionTestNow,
		ExpiresAt:         sessionTestNow.Add(8 * time.Hour),
		LastSeen:          sessionTestNow,
		IDTokenExpiry:     sessionTestNow.Add(time.Hour),
	}
	for i := range groups {
		s.Principal.Groups = append(s.Principal.Groups, fmt.Sprintf("team-platform-%02d", i))
	}
	return s
}

// requestWith returns a request carrying the cookies in one Cookie header.
func requestWith(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	var parts []string
	for _, c := range cookies {
		parts = append(parts, c.Name+"="+c.Value)
	}
	if len(parts) > 0 {
		r.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	return r
}

func seal(t testing.TB, c *SessionCodec, s *Session) []*http.Cookie {
	t.Helper()
	cookies, err := c.Seal(s, sessionTestNow)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return cookies
}

// wantOpened is what Open returns for s: the sealed fields plus those Open
// derives.
func wantOpened(s *Session) *Session {
	want := *s
	want.Principal.AuthKind = identity.AuthBrowser
	want.Principal.SessionID = s.ID
	want.Principal.Expiry = s.ExpiresAt
	return &want
}

func TestSessionRoundTrip(t *testing.T) {
	c := newTestCodec(t, nil)
	service := typicalSession(0)
	service.Principal = identity.Principal{Kind: identity.KindService, ID: "spiffe://example.org/ci", Claims: nil}
	service.DeviceFingerprint = ""
	for name, s := range map[string]*Session{
		"typical user":            typicalSession(10),
		"no groups, no device":    typicalSession(0),
		"service, non-derived id": service,
		// Issue 21.1: a Cognito user name survives the cookie.
		"cognito username": func() *Session {
			s := typicalSession(2)
			s.Principal.Username = "ada"
			return s
		}(),
		"zero optional times": func() *Session {
			s := typicalSession(1)
			s.LastSeen, s.IDTokenExpiry, s.Principal.AuthTime = time.Time{}, time.Time{}, time.Time{}
			return s
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := c.Open(requestWith(seal(t, c, s)...), sessionTestNow)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if diff := cmp.Diff(wantOpened(s), got); diff != "" {
				t.Errorf("Open mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mutate     func(*SessionCodecConfig)
		wantDomain string
		wantSecure bool
	}{
		{"host-only by default", nil, "", true},
		{"configured domain", func(c *SessionCodecConfig) { c.Domain = "example.com" }, "example.com", true},
		{"insecure loopback tests", func(c *SessionCodecConfig) { c.Insecure = true }, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := typicalSession(10)
			cookies := seal(t, newTestCodec(t, tc.mutate), s)
			if len(cookies) != 1 {
				t.Fatalf("got %d cookies, want 1", len(cookies))
			}
			ck := cookies[0]
			if ck.Name != "_ztp" || ck.Path != "/" || ck.Domain != tc.wantDomain || ck.Secure != tc.wantSecure ||
				!ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie attributes = %s", ck)
			}
			if ck.MaxAge != int(8*time.Hour/time.Second) || !ck.Expires.Equal(s.ExpiresAt) {
				t.Errorf("MaxAge %d, Expires %v; want 8h and %v", ck.MaxAge, ck.Expires, s.ExpiresAt)
			}
			if err := ck.Valid(); err != nil {
				t.Errorf("cookie not valid for net/http: %v", err)
			}
		})
	}
}

func TestTypicalSessionCookieIsSmall(t *testing.T) {
	cookies := seal(t, newTestCodec(t, nil), typicalSession(10))
	if len(cookies) != 1 {
		t.Fatalf("typical session needs %d cookies, want 1", len(cookies))
	}
	size := len(cookies[0].String())
	t.Logf("Set-Cookie for a user with 10 groups: %d bytes (value %d)", size, len(cookies[0].Value))
	if size >= 1500 {
		t.Errorf("typical Set-Cookie is %d bytes, want < 1500", size)
	}
}

func TestSessionKeyRotation(t *testing.T) {
	oldKey, newKey, otherKey := testSecret(1), testSecret(2), testSecret(3)
	old := newTestCodec(t, func(c *SessionCodecConfig) { c.Secrets = [][]byte{oldKey} })
	rotated := newTestCodec(t, func(c *SessionCodecConfig) { c.Secrets = [][]byte{newKey, oldKey} })
	retired := newTestCodec(t, func(c *SessionCodecConfig) { c.Secrets = [][]byte{newKey} })
	foreign := newTestCodec(t, func(c *SessionCodecConfig) { c.Secrets = [][]byte{otherKey} })

	s := typicalSession(3)
	byOld := requestWith(seal(t, old, s)...)
	if _, err := rotated.Open(byOld, sessionTestNow); err != nil {
		t.Errorf("cookie sealed with the old key after rotation: %v", err)
	}
	byRotated := requestWith(seal(t, rotated, s)...)
	if _, err := retired.Open(byRotated, sessionTestNow); err != nil {
		t.Errorf("rotated codec must seal with the new (first) key: %v", err)
	}
	if _, err := old.Open(byRotated, sessionTestNow); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("old codec opened a cookie sealed with the new key: %v", err)
	}
	if _, err := foreign.Open(byOld, sessionTestNow); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("cookie sealed by an unknown key: err = %v, want ErrInvalidSession", err)
	}
}

// A secret reused for both purposes must not let a login state cookie be
// presented as a session (HKDF info separates the keys).
func TestSessionAndLoginStateKeysDiffer(t *testing.T) {
	c := newTestCodec(t, nil)
	ls, err := NewLoginState("/", "cognito", sessionTestNow)
	if err != nil {
		t.Fatal(err)
	}
	lsCookie, err := c.SealLoginState(ls)
	if err != nil {
		t.Fatal(err)
	}
	r := requestWith(&http.Cookie{Name: "_ztp", Value: lsCookie.Value})
	if _, err := c.Open(r, sessionTestNow); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("login state value opened as a session: %v", err)
	}
	// And the reverse: a session value under a login state cookie name.
	sess := seal(t, c, typicalSession(0))[0]
	r = requestWith(&http.Cookie{Name: lsCookie.Name, Value: sess.Value})
	if _, _, err := c.OpenLoginState(r, ls.State, sessionTestNow); !errors.Is(err, ErrInvalidLoginState) {
		t.Errorf("session value opened as a login state: %v", err)
	}
}

func TestSessionChunking(t *testing.T) {
	c := newTestCodec(t, nil)
	s := typicalSession(300)
	cookies := seal(t, c, s)
	if len(cookies) < 2 {
		t.Fatalf("300 groups sealed into %d cookie(s), want several", len(cookies))
	}
	for i, ck := range cookies {
		if want := chunkName("_ztp", i); ck.Name != want {
			t.Errorf("chunk %d named %q, want %q", i, ck.Name, want)
		}
		if n := len(ck.Name) + 1 + len(ck.Value); n > maxCookieBytes {
			t.Errorf("chunk %d is %d bytes, over %d", i, n, maxCookieBytes)
		}
	}
	got, err := c.Open(requestWith(cookies...), sessionTestNow)
	if err != nil {
		t.Fatalf("Open chunked: %v", err)
	}
	if diff := cmp.Diff(wantOpened(s), got); diff != "" {
		t.Errorf("chunked round trip (-want +got):\n%s", diff)
	}

	t.Run("chunks in any header order", func(t *testing.T) {
		reversed := append([]*http.Cookie(nil), cookies...)
		for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
			reversed[i], reversed[j] = reversed[j], reversed[i]
		}
		if _, err := c.Open(requestWith(reversed...), sessionTestNow); err != nil {
			t.Errorf("Open: %v", err)
		}
	})
	for i := 1; i < len(cookies); i++ {
		t.Run(fmt.Sprintf("chunk %d missing", i), func(t *testing.T) {
			partial := append(append([]*http.Cookie(nil), cookies[:i]...), cookies[i+1:]...)
			if _, err := c.Open(requestWith(partial...), sessionTestNow); !errors.Is(err, ErrInvalidSession) {
				t.Errorf("err = %v, want ErrInvalidSession", err)
			}
		})
	}
	t.Run("first chunk missing", func(t *testing.T) {
		if _, err := c.Open(requestWith(cookies[1:]...), sessionTestNow); !errors.Is(err, ErrNoSession) {
			t.Errorf("err = %v, want ErrNoSession", err)
		}
	})
	t.Run("chunks swapped", func(t *testing.T) {
		prefix, data, _ := strings.Cut(cookies[0].Value, ".")
		swapped := append([]*http.Cookie{
			{Name: cookies[0].Name, Value: prefix + "." + cookies[1].Value},
			{Name: cookies[1].Name, Value: data},
		}, cookies[2:]...)
		if _, err := c.Open(requestWith(swapped...), sessionTestNow); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("err = %v, want ErrInvalidSession", err)
		}
	})
	t.Run("stale extra chunk from a larger session is ignored", func(t *testing.T) {
		small := seal(t, c, typicalSession(1))
		stale := &http.Cookie{Name: "_ztp_3", Value: cookies[1].Value}
		if _, err := c.Open(requestWith(append(small, stale)...), sessionTestNow); err != nil {
			t.Errorf("Open: %v", err)
		}
	})
	t.Run("more than MaxChunks", func(t *testing.T) {
		fewer := newTestCodec(t, func(c *SessionCodecConfig) { c.MaxChunks = len(cookies) - 1 })
		if _, err := fewer.Seal(s, sessionTestNow); !errors.Is(err, ErrSessionTooLarge) {
			t.Errorf("Seal with MaxChunks %d: err = %v, want ErrSessionTooLarge", len(cookies)-1, err)
		}
		// A codec allowing fewer chunks refuses a cookie that announces more.
		if _, err := fewer.Open(requestWith(cookies...), sessionTestNow); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("Open with MaxChunks %d: err = %v, want ErrInvalidSession", len(cookies)-1, err)
		}
	})
}

// TestSessionTamperEveryByte flips each byte of a sealed session, both in
// the decoded blob and in the cookie text, and expects a clean refusal.
func TestSessionTamperEveryByte(t *testing.T) {
	c := newTestCodec(t, nil)
	s := typicalSession(0)
	s.Principal = identity.Principal{Kind: identity.KindUser, ID: "u", Groups: []string{"eng"}}
	value := seal(t, c, s)[0].Value
	blob, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		t.Fatal(err)
	}
	for i := range blob {
		tampered := bytes.Clone(blob)
		tampered[i] ^= 0x01
		v := base64.RawURLEncoding.EncodeToString(tampered)
		if got, err := c.Open(requestWith(&http.Cookie{Name: "_ztp", Value: v}), sessionTestNow); !errors.Is(err, ErrInvalidSession) || got != nil {
			t.Errorf("blob byte %d flipped: session %v, err %v", i, got, err)
		}
	}
	for i := range value {
		for _, repl := range []byte{'A', '.', '*'} {
			if value[i] == repl {
				continue
			}
			v := value[:i] + string(repl) + value[i+1:]
			got, err := c.Open(requestWith(&http.Cookie{Name: "_ztp", Value: v}), sessionTestNow)
			if got != nil || (!errors.Is(err, ErrInvalidSession) && !errors.Is(err, ErrNoSession)) {
				t.Errorf("character %d replaced by %q: session %v, err %v", i, repl, got, err)
			}
		}
	}
	for n := range len(value) {
		v := value[:n]
		if got, err := c.Open(requestWith(&http.Cookie{Name: "_ztp", Value: v}), sessionTestNow); err == nil || got != nil {
			t.Errorf("truncated to %d characters: session %v, err %v", n, got, err)
		}
	}
}

func TestSessionRefusals(t *testing.T) {
	c := newTestCodec(t, nil)
	s := typicalSession(2)
	value := seal(t, c, s)[0].Value
	blob, _ := base64.RawURLEncoding.DecodeString(value)
	wrongVersion := bytes.Clone(blob)
	wrongVersion[0] = 2
	for _, tc := range []struct {
		name   string
		header string
		now    time.Time
		want   error
	}{
		{"no cookie header", "", sessionTestNow, ErrNoSession},
		{"other cookies only", "a=b; _ztp_x=1", sessionTestNow, ErrNoSession},
		{"empty value", "_ztp=", sessionTestNow, ErrNoSession},
		{"moved to another cookie name", "_other=" + value, sessionTestNow, ErrNoSession},
		{"wrong version", "_ztp=" + base64.RawURLEncoding.EncodeToString(wrongVersion), sessionTestNow, ErrInvalidSession},
		{"not base64", "_ztp=!!!!" + value, sessionTestNow, ErrInvalidSession},
		{"oversize", "_ztp=" + strings.Repeat("A", maxCookieBytes), sessionTestNow, ErrInvalidSession},
		{"chunk count without chunks", "_ztp=3." + value, sessionTestNow, ErrInvalidSession},
		{"chunk count above nine", "_ztp=:." + value, sessionTestNow, ErrInvalidSession},
		{"just before expiry", "_ztp=" + value, s.ExpiresAt.Add(-time.Second), nil},
		{"at expiry", "_ztp=" + value, s.ExpiresAt, ErrExpiredSession},
		{"after expiry", "_ztp=" + value, s.ExpiresAt.Add(time.Hour), ErrExpiredSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.header != "" {
				r.Header.Set("Cookie", tc.header)
			}
			got, err := c.Open(r, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if (err == nil) != (got != nil) {
				t.Errorf("session %v with err %v", got, err)
			}
		})
	}
}

// The name is bound as associated data: a value sealed for one cookie name
// does not open under another, even with the same secret.
func TestSessionCookieNameIsBound(t *testing.T) {
	a := newTestCodec(t, func(c *SessionCodecConfig) { c.CookieName = "_ztp_a" })
	b := newTestCodec(t, func(c *SessionCodecConfig) { c.CookieName = "_ztp_b" })
	value := seal(t, a, typicalSession(1))[0].Value
	if _, err := b.Open(requestWith(&http.Cookie{Name: "_ztp_b", Value: value}), sessionTestNow); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("value moved to another cookie name: err = %v, want ErrInvalidSession", err)
	}
}

// A cookie planted from a sibling domain with the same name must not shadow
// the real one (cookie tossing).
func TestSessionPlantedDuplicateCookie(t *testing.T) {
	c := newTestCodec(t, nil)
	s := typicalSession(1)
	real := seal(t, c, s)[0]
	r := requestWith(&http.Cookie{Name: "_ztp", Value: "planted"}, real)
	got, err := c.Open(r, sessionTestNow)
	if err != nil || got.ID != s.ID {
		t.Errorf("Open with a planted duplicate first: %v, %v", got, err)
	}
}

func TestSessionClear(t *testing.T) {
	c := newTestCodec(t, func(c *SessionCodecConfig) { c.Domain = "example.com" })
	cookies := seal(t, c, typicalSession(300))
	r := requestWith(append(cookies, &http.Cookie{Name: "_ztp_7", Value: "stale"}, &http.Cookie{Name: "_ztpx", Value: "1"},
		&http.Cookie{Name: "_ztp_login_abcdefgh", Value: "1"}, &http.Cookie{Name: "other", Value: "1"})...)
	var names []string
	for _, ck := range c.Clear(r) {
		if ck.MaxAge != -1 || ck.Value != "" || ck.Path != "/" || ck.Domain != "example.com" || !ck.Secure || !ck.HttpOnly {
			t.Errorf("deletion cookie %s", ck)
		}
		names = append(names, ck.Name)
	}
	var want []string
	for _, ck := range cookies {
		want = append(want, ck.Name)
	}
	want = append(want, "_ztp_7")
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("cleared cookies (-want +got):\n%s", diff)
	}
	if got := c.Clear(requestWith()); len(got) != 0 {
		t.Errorf("Clear without cookies = %v", got)
	}
}

func TestSessionSealRefusals(t *testing.T) {
	c := newTestCodec(t, nil)
	expired := typicalSession(0)
	expired.ExpiresAt = sessionTestNow
	noID := typicalSession(0)
	noID.ID = ""
	for name, s := range map[string]*Session{"nil": nil, "expired": expired, "no id": noID} {
		if _, err := c.Seal(s, sessionTestNow); err == nil {
			t.Errorf("Seal(%s) succeeded", name)
		}
	}
}

func TestSessionCodecConfigChecks(t *testing.T) {
	short := []byte("too short")
	for _, tc := range []struct {
		name string
		cfg  SessionCodecConfig
		want []string // substrings of the joined error
	}{
		{"no secrets", SessionCodecConfig{}, []string{"secrets: at least one"}},
		{"short secret", SessionCodecConfig{Secrets: [][]byte{testSecret(1), short}}, []string{"secrets[1]: 9 bytes"}},
		{"bad name and chunks", SessionCodecConfig{CookieName: "a b", Secrets: [][]byte{testSecret(1)}, MaxChunks: 10},
			[]string{"cookie_name:", "max_chunks: 10"}},
		{"__Host- with domain", SessionCodecConfig{CookieName: "__Host-ztp", Domain: "example.com", Secrets: [][]byte{testSecret(1)}},
			[]string{"cookie_domain: must be empty"}},
		{"__Secure- insecure", SessionCodecConfig{CookieName: "__Secure-ztp", Insecure: true, Secrets: [][]byte{testSecret(1)}},
			[]string{"require Secure"}},
		{"bad domain", SessionCodecConfig{Domain: "a;b", Secrets: [][]byte{testSecret(1)}}, []string{"cookie_domain:"}},
		{"login prefix equals name", SessionCodecConfig{CookieName: "x", LoginCookiePrefix: "x", Secrets: [][]byte{testSecret(1)}},
			[]string{"login_cookie_prefix: must differ"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSessionCodec(tc.cfg)
			if err == nil {
				t.Fatal("NewSessionCodec succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), string(short)) {
				t.Errorf("error %q contains a secret", err)
			}
		})
	}

	cfg := SessionCodecConfig{CookieName: "__Host-ztp", Secrets: [][]byte{testSecret(7)}}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatalf("__Host- config: %v", err)
	}
	if cfg.MaxChunks != DefaultSessionMaxChunks || cfg.LoginCookiePrefix != "__Host-ztp_login" || cfg.LoginCookiePath != "/" {
		t.Errorf("defaults not applied: %v", cfg)
	}
	if printed := fmt.Sprintf("%v %+v", cfg, cfg); strings.Contains(printed, string(testSecret(7))) || !strings.Contains(printed, "redacted") {
		t.Errorf("printed config %q shows its secrets", printed)
	}
}
