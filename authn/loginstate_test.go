package authn

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestLoginState(t *testing.T, created time.Time) LoginState {
	t.Helper()
	ls, err := NewLoginState("/docs?page=2", "cognito", created)
	if err != nil {
		t.Fatalf("NewLoginState: %v", err)
	}
	return ls
}

func sealLoginState(t *testing.T, c *SessionCodec, ls LoginState) *http.Cookie {
	t.Helper()
	ck, err := c.SealLoginState(ls)
	if err != nil {
		t.Fatalf("SealLoginState: %v", err)
	}
	return ck
}

func TestNewLoginStateRandomness(t *testing.T) {
	seen := make(map[string]bool)
	for range 50 {
		ls := newTestLoginState(t, sessionTestNow)
		for name, v := range map[string]string{"state": ls.State, "nonce": ls.Nonce, "verifier": ls.PKCEVerifier} {
			raw, err := base64.RawURLEncoding.DecodeString(v)
			if err != nil || len(raw) < 16 {
				t.Fatalf("%s %q: %d random bytes, err %v", name, v, len(raw), err)
			}
			if seen[v] {
				t.Fatalf("%s repeated", name)
			}
			seen[v] = true
		}
		if n := len(ls.PKCEVerifier); n < 43 || n > 128 {
			t.Errorf("PKCE verifier is %d characters, want 43..128", n)
		}
	}
	if _, err := NewLoginState("/"+strings.Repeat("a", maxLoginReturnToBytes), "x", sessionTestNow); err == nil {
		t.Error("NewLoginState accepted an overlong return URL")
	}
}

// TestPKCEChallengeRFC7636 checks the S256 example of RFC 7636 appendix B.
func TestPKCEChallengeRFC7636(t *testing.T) {
	ls := LoginState{PKCEVerifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}
	if got, want := ls.PKCEChallenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; got != want {
		t.Errorf("PKCEChallenge = %q, want %q", got, want)
	}
	sum := sha256.Sum256([]byte(ls.PKCEVerifier))
	if ls.PKCEChallenge() != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("challenge is not base64url(sha256(verifier))")
	}
}

func TestLoginStateRoundTrip(t *testing.T) {
	c := newTestCodec(t, nil)
	ls := newTestLoginState(t, sessionTestNow)
	ls.StepUp = "mfa"
	ck := sealLoginState(t, c, ls)
	if want := "_ztp_login_" + ls.State[:8]; ck.Name != want {
		t.Errorf("cookie name %q, want %q", ck.Name, want)
	}
	if ck.Path != "/.ztp/" || ck.Domain != "" || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge != 600 {
		t.Errorf("cookie attributes: %s", ck)
	}
	if err := ck.Valid(); err != nil {
		t.Errorf("cookie not valid for net/http: %v", err)
	}
	got, deletion, err := c.OpenLoginState(requestWith(ck), ls.State, sessionTestNow.Add(9*time.Minute))
	if err != nil {
		t.Fatalf("OpenLoginState: %v", err)
	}
	if diff := cmp.Diff(ls, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if deletion == nil || deletion.Name != ck.Name || deletion.MaxAge != -1 || deletion.Path != ck.Path {
		t.Errorf("deletion cookie = %v", deletion)
	}
}

// Several tabs start signing in before any finishes; each callback finds
// its own attempt.
func TestLoginStateSeveralTabs(t *testing.T) {
	c := newTestCodec(t, nil)
	var states []LoginState
	var cookies []*http.Cookie
	for i := range MaxLoginStates {
		ls := newTestLoginState(t, sessionTestNow.Add(time.Duration(i)*time.Second))
		states = append(states, ls)
		cookies = append(cookies, sealLoginState(t, c, ls))
	}
	r := requestWith(cookies...)
	for i, ls := range states {
		got, _, err := c.OpenLoginState(r, ls.State, sessionTestNow.Add(time.Minute))
		if err != nil || got.Nonce != ls.Nonce {
			t.Errorf("tab %d: nonce %q, err %v", i, got.Nonce, err)
		}
	}
}

func TestLoginStateRefusals(t *testing.T) {
	c := newTestCodec(t, nil)
	ls := newTestLoginState(t, sessionTestNow)
	ck := sealLoginState(t, c, ls)
	other := newTestLoginState(t, sessionTestNow)
	otherCookie := sealLoginState(t, c, other)
	foreign := newTestCodec(t, func(c *SessionCodecConfig) { c.Secrets = [][]byte{testSecret(9)} })
	foreignCookie := sealLoginState(t, foreign, ls)

	// sameName carries ls's state prefix but the rest of the state differs:
	// the sealed state must match the parameter exactly.
	sameName := ls.State[:8] + other.State[8:]
	future := newTestLoginState(t, sessionTestNow.Add(2*time.Minute))

	for _, tc := range []struct {
		name        string
		cookies     []*http.Cookie
		state       string
		now         time.Time
		want        error
		wantDeleted bool
	}{
		{"no cookie", nil, ls.State, sessionTestNow, ErrNoLoginState, false},
		{"consumed (cookie deleted)", []*http.Cookie{otherCookie}, ls.State, sessionTestNow, ErrNoLoginState, false},
		{"malformed state", []*http.Cookie{ck}, "short", sessionTestNow, ErrInvalidLoginState, false},
		{"state with cookie syntax", []*http.Cookie{ck}, ls.State[:8] + ";x=1" + strings.Repeat("a", 20), sessionTestNow, ErrInvalidLoginState, false},
		{"state with same prefix, different rest", []*http.Cookie{ck}, sameName, sessionTestNow, ErrInvalidLoginState, true},
		{"another tab's cookie under this name", []*http.Cookie{{Name: ck.Name, Value: otherCookie.Value}}, ls.State, sessionTestNow, ErrInvalidLoginState, true},
		{"sealed by an unknown key", []*http.Cookie{foreignCookie}, ls.State, sessionTestNow, ErrInvalidLoginState, true},
		{"tampered", []*http.Cookie{{Name: ck.Name, Value: flipChar(ck.Value, len(ck.Value)/2)}}, ls.State, sessionTestNow, ErrInvalidLoginState, true},
		{"truncated", []*http.Cookie{{Name: ck.Name, Value: ck.Value[:len(ck.Value)-4]}}, ls.State, sessionTestNow, ErrInvalidLoginState, true},
		{"garbage", []*http.Cookie{{Name: ck.Name, Value: "x"}}, ls.State, sessionTestNow, ErrInvalidLoginState, true},
		{"expired", []*http.Cookie{ck}, ls.State, sessionTestNow.Add(LoginStateTTL + time.Second), ErrExpiredLoginState, true},
		{"created in the future", []*http.Cookie{sealLoginState(t, c, future)}, future.State, sessionTestNow, ErrInvalidLoginState, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, deletion, err := c.OpenLoginState(requestWith(tc.cookies...), tc.state, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got != (LoginState{}) {
				t.Errorf("returned state %+v with error", got)
			}
			if (deletion != nil) != tc.wantDeleted {
				t.Errorf("deletion cookie = %v, want one: %t", deletion, tc.wantDeleted)
			}
		})
	}
}

func TestLoginStateSealRefusals(t *testing.T) {
	c := newTestCodec(t, nil)
	good := newTestLoginState(t, sessionTestNow)
	for name, mutate := range map[string]func(*LoginState){
		"bad state":    func(ls *LoginState) { ls.State = "abc" },
		"no nonce":     func(ls *LoginState) { ls.Nonce = "" },
		"no verifier":  func(ls *LoginState) { ls.PKCEVerifier = "" },
		"no time":      func(ls *LoginState) { ls.CreatedAt = time.Time{} },
		"huge step-up": func(ls *LoginState) { ls.StepUp = strings.Repeat("x", 4000) },
	} {
		ls := good
		mutate(&ls)
		if _, err := c.SealLoginState(ls); err == nil {
			t.Errorf("SealLoginState(%s) succeeded", name)
		}
	}
}

func TestPruneLoginStates(t *testing.T) {
	c := newTestCodec(t, nil)
	now := sessionTestNow.Add(LoginStateTTL)
	var cookies []*http.Cookie
	var oldestValid []string
	for i := range 7 {
		// Attempt 0 is expired; 1..6 are valid, 1 and 2 the oldest.
		ls := newTestLoginState(t, sessionTestNow.Add(time.Duration(i)*time.Second-time.Second))
		ck := sealLoginState(t, c, ls)
		cookies = append(cookies, ck)
		if i == 1 || i == 2 {
			oldestValid = append(oldestValid, ck.Name)
		}
	}
	garbage := &http.Cookie{Name: "_ztp_login_AAAAAAAA", Value: "garbage"}
	unrelated := &http.Cookie{Name: "_ztp_login_toolongname", Value: "x"}
	r := requestWith(append(cookies, garbage, unrelated)...)

	var got []string
	for _, ck := range c.PruneLoginStates(r, now) {
		if ck.MaxAge != -1 || ck.Path != "/.ztp/" {
			t.Errorf("deletion cookie %s", ck)
		}
		got = append(got, ck.Name)
	}
	want := append([]string{cookies[0].Name, garbage.Name}, oldestValid...)
	if diff := cmp.Diff(want, got, sortStrings); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}
	if kept := 7 + 1 - len(got); kept != MaxLoginStates-1 {
		t.Errorf("%d attempts kept, want %d", kept, MaxLoginStates-1)
	}
	if got := c.PruneLoginStates(requestWith(cookies[6]), now); len(got) != 0 {
		t.Errorf("pruned a lone valid attempt: %v", got)
	}
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// flipChar replaces the i-th character of a base64url string with another
// base64url character.
func flipChar(s string, i int) string {
	repl := byte('A')
	if s[i] == 'A' {
		repl = 'B'
	}
	return s[:i] + string(repl) + s[i+1:]
}
