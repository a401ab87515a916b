package authn

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

// jarSignIns starts n sign-in attempts the way a browser with a cookie jar
// does: each request carries the attempts still in the jar, the response
// deletes the pruned ones and adds its own. It returns the attempts in the
// order they were started and the jar's final cookies, which it sends in
// the order given by order (the browser's choice, not ours).
func jarSignIns(t *testing.T, c *SessionCodec, n int, now time.Time, order func([]*http.Cookie)) ([]LoginState, map[string]*http.Cookie) {
	t.Helper()
	var stamps loginStamps
	jar := map[string]*http.Cookie{}
	var started []LoginState
	for range n {
		sent := make([]*http.Cookie, 0, len(jar))
		for _, ck := range jar {
			sent = append(sent, ck)
		}
		order(sent)
		for _, del := range c.PruneLoginStates(requestWith(sent...), now) {
			delete(jar, del.Name)
		}
		ls := newTestLoginState(t, stamps.next(now))
		started = append(started, ls)
		ck := sealLoginState(t, c, ls)
		jar[ck.Name] = ck
	}
	return started, jar
}

// TestPruneKeepsNewestWithinOneSecond: issue 12.10, eight sign-ins started
// within one second kept attempts 1-4 and 8 (creation time was kept to the
// second, so ties fell back to cookie order) and attempts 5-7 failed. The
// newest MaxLoginStates must be the ones kept, whatever order the browser
// sends the cookies in.
func TestPruneKeepsNewestWithinOneSecond(t *testing.T) {
	c := newTestCodec(t, nil)
	for name, order := range map[string]func([]*http.Cookie){
		"by name": func(cs []*http.Cookie) {
			slices.SortFunc(cs, func(a, b *http.Cookie) int { return cmp.Compare(a.Name, b.Name) })
		},
		"by reverse name": func(cs []*http.Cookie) {
			slices.SortFunc(cs, func(a, b *http.Cookie) int { return cmp.Compare(b.Name, a.Name) })
		},
	} {
		t.Run(name, func(t *testing.T) {
			started, jar := jarSignIns(t, c, 8, sessionTestNow, order)
			if len(jar) != MaxLoginStates {
				t.Fatalf("jar holds %d attempts, want %d", len(jar), MaxLoginStates)
			}
			var sent []*http.Cookie
			for _, ck := range jar {
				sent = append(sent, ck)
			}
			r := requestWith(sent...)
			for i, ls := range started {
				_, _, err := c.OpenLoginState(r, ls.State, sessionTestNow.Add(time.Second))
				newest := i >= len(started)-MaxLoginStates
				if newest && err != nil {
					t.Errorf("attempt %d (one of the newest): %v", i+1, err)
				}
				if !newest && !errors.Is(err, ErrNoLoginState) {
					t.Errorf("attempt %d (one of the oldest): err %v, want ErrNoLoginState", i+1, err)
				}
			}
		})
	}
}

// TestPruneTiesAreDeterministic: attempts with the same creation time (from
// two replicas, say) are pruned by cookie name, not by the order the
// browser sent them.
func TestPruneTiesAreDeterministic(t *testing.T) {
	c := newTestCodec(t, nil)
	var cookies []*http.Cookie
	for range MaxLoginStates + 2 {
		cookies = append(cookies, sealLoginState(t, c, newTestLoginState(t, sessionTestNow)))
	}
	first := names(c.PruneLoginStates(requestWith(cookies...), sessionTestNow))
	slices.Reverse(cookies)
	second := names(c.PruneLoginStates(requestWith(cookies...), sessionTestNow))
	if len(first) != 3 || !slices.Equal(first, second) {
		t.Fatalf("pruned %v, then %v with the cookies reversed", first, second)
	}
}

func names(cs []*http.Cookie) []string {
	out := make([]string, 0, len(cs))
	for _, ck := range cs {
		out = append(out, ck.Name)
	}
	return out
}

func TestLoginStampsIncrease(t *testing.T) {
	var s loginStamps
	a, b := s.next(sessionTestNow), s.next(sessionTestNow)
	if !b.After(a) || b.Sub(a) != time.Nanosecond {
		t.Fatalf("stamps %v then %v", a, b)
	}
	// A clock stepped back by more than a second restarts from the clock.
	back := sessionTestNow.Add(-time.Hour)
	if got := s.next(back); !got.Equal(back) {
		t.Fatalf("after a step back: %v, want %v", got, back)
	}
}

// TestLoginStateVersion1StillOpens: an attempt sealed before the upgrade
// (creation time in seconds) completes after it.
func TestLoginStateVersion1StillOpens(t *testing.T) {
	c := newTestCodec(t, nil)
	ls := newTestLoginState(t, sessionTestNow.Truncate(time.Second))
	name := c.loginCookieName(ls.State)
	var plain []byte
	for _, v := range [...]string{ls.State, ls.Nonce, ls.PKCEVerifier, ls.ReturnTo, ls.IdP, ls.StepUp} {
		plain = appendString(plain, v)
	}
	plain = appendTime(plain, ls.CreatedAt)
	ck := &http.Cookie{Name: name, Value: sealToString(c.loginAEADs[0], loginStateVersionSeconds, plain, loginStateAD(loginStateVersionSeconds, name))}
	got, _, err := c.OpenLoginState(requestWith(ck), ls.State, sessionTestNow.Add(time.Minute))
	if err != nil || !got.CreatedAt.Equal(ls.CreatedAt) || got.Nonce != ls.Nonce {
		t.Fatalf("version 1 attempt: %+v, %v", got, err)
	}
	// The version is authenticated: the same bytes under version 2 fail.
	forged := &http.Cookie{Name: name, Value: sealToString(c.loginAEADs[0], loginStateVersion, plain, loginStateAD(loginStateVersionSeconds, name))}
	if _, _, err := c.OpenLoginState(requestWith(forged), ls.State, sessionTestNow); !errors.Is(err, ErrInvalidLoginState) {
		t.Fatalf("version swapped: %v", err)
	}
}

// FuzzLoginStatePayload decodes arbitrary plaintext as either version: it
// must never panic, and what decodes must encode back to the same bytes
// (version 2).
func FuzzLoginStatePayload(f *testing.F) {
	ls := LoginState{State: "s", Nonce: "n", PKCEVerifier: "v", ReturnTo: "/x", IdP: "corp", CreatedAt: sessionTestNow}
	f.Add(appendLoginStatePayload(nil, &ls), byte(2))
	f.Add(appendTime(appendLoginStatePayload(nil, &ls)[:0], sessionTestNow), byte(1))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0x80}, byte(2))
	f.Fuzz(func(t *testing.T, plain []byte, version byte) {
		if version != loginStateVersionSeconds {
			version = loginStateVersion
		}
		got, err := decodeLoginStatePayload(plain, version)
		if err != nil {
			return
		}
		if got.CreatedAt.IsZero() {
			t.Fatal("decoded a zero creation time")
		}
		again, err := decodeLoginStatePayload(appendLoginStatePayload(nil, &got), loginStateVersion)
		if err != nil || again != got {
			t.Fatalf("round trip of %+v: %+v, %v", got, again, err)
		}
	})
}

// FuzzOpenLoginState feeds arbitrary login cookie values (seeded with
// well-formed cookies of both versions sealed by another key) to
// OpenLoginState and PruneLoginStates: nothing may panic or open.
func FuzzOpenLoginState(f *testing.F) {
	c := newTestCodec(f, nil)
	other := newTestCodec(f, func(c *SessionCodecConfig) { c.Secrets = [][]byte{testSecret(2)} })
	ls, err := NewLoginState("/x", "corp", sessionTestNow)
	if err != nil {
		f.Fatal(err)
	}
	ck, err := other.SealLoginState(ls)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ck.Value, ls.State)
	f.Add("AQ"+ck.Value[2:], ls.State)
	f.Add("", ls.State)
	f.Add("Ag", "short")
	f.Fuzz(func(t *testing.T, value, state string) {
		name := "_ztp_login_AAAAAAAA"
		if validState(state) {
			name = c.loginCookieName(state)
		}
		r := requestWith(&http.Cookie{Name: name, Value: value})
		if got, _, err := c.OpenLoginState(r, state, sessionTestNow); err == nil {
			t.Fatalf("forged login state opened: %+v", got)
		}
		c.PruneLoginStates(r, sessionTestNow)
	})
}
