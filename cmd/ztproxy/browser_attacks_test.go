package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"ztproxy/internal/testenv"
)

// noFollow returns a copy of c that stops at the first redirect.
func noFollow(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// startLogin begins a sign-in in c's cookie jar and returns the IdP
// authorization URL the proxy produced.
func (e *browserEnv) startLogin(t *testing.T, c *http.Client) *url.URL {
	t.Helper()
	return e.startLoginTo(t, c, "/hello")
}

// startLoginTo is startLogin with rd as the return URL.
func (e *browserEnv) startLoginTo(t *testing.T, c *http.Client, rd string) *url.URL {
	t.Helper()
	resp, err := noFollow(c).Get(e.base + "/.ztp/login?rd=" + url.QueryEscape(rd))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("login start for rd=%q: %d %v", rd, resp.StatusCode, err)
	}
	return loc
}

// authorize signs in at the OP with authURL and returns the callback URL
// the OP redirects to (not followed).
func (e *browserEnv) authorize(t *testing.T, authURL string, user testenv.OIDCUser) *url.URL {
	t.Helper()
	c := e.client(t)
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), e.base+"/.ztp/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp := e.op.Login(t, c, authURL, user, false)
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), e.base+"/.ztp/callback") {
		t.Fatalf("OP did not redirect to the callback: %d %v", resp.StatusCode, loc)
	}
	return loc
}

func (e *browserEnv) callback(t *testing.T, c *http.Client, q url.Values) int {
	t.Helper()
	resp, err := noFollow(c).Get(e.base + "/.ztp/callback?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *browserEnv) hasSession(t *testing.T, c *http.Client) bool {
	u, _ := url.Parse(e.base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "_ztp_session" {
			return true
		}
	}
	return false
}

// TestBrowserCallbackAttacks drives hostile callbacks against the real
// binary and the real OP: each must fail without creating a session.
func TestBrowserCallbackAttacks(t *testing.T) {
	e := newBrowserEnv(t, testenv.OIDCOptions{}, "1h")
	alice := e.op.User(t, "alice")

	t.Run("wrong iss is refused before the code is redeemed", func(t *testing.T) {
		c := e.client(t)
		auth := e.startLogin(t, c)
		cb := e.authorize(t, auth.String(), alice)
		q := cb.Query()
		q.Set("iss", "https://evil.example")
		if st := e.callback(t, c, q); st != http.StatusBadRequest || e.hasSession(t, c) {
			t.Fatalf("status %d, session %v", st, e.hasSession(t, c))
		}
		// The state was consumed: the genuine callback now fails too.
		q.Set("iss", e.op.Issuer)
		if st := e.callback(t, c, q); st != http.StatusBadRequest {
			t.Fatalf("reused state: %d", st)
		}
	})
	t.Run("reused callback", func(t *testing.T) {
		c := e.client(t)
		cb := e.authorize(t, e.startLogin(t, c).String(), alice)
		if st := e.callback(t, c, cb.Query()); st != http.StatusFound || !e.hasSession(t, c) {
			t.Fatalf("genuine callback: %d", st)
		}
		if st := e.callback(t, c, cb.Query()); st != http.StatusBadRequest {
			t.Fatalf("replayed callback: %d", st)
		}
	})
	t.Run("code injected into another browser's sign-in", func(t *testing.T) {
		attacker, victim := e.client(t), e.client(t)
		stolen := e.authorize(t, e.startLogin(t, attacker).String(), alice).Query()
		victimAuth := e.startLogin(t, victim)
		q := url.Values{"code": {stolen.Get("code")}, "state": {victimAuth.Query().Get("state")}, "iss": {e.op.Issuer}}
		if st := e.callback(t, victim, q); st < 400 || e.hasSession(t, victim) {
			t.Fatalf("injected code accepted: %d", st)
		}
	})
	t.Run("nonce swapped in the authorization request", func(t *testing.T) {
		c := e.client(t)
		auth := e.startLogin(t, c)
		q := auth.Query()
		q.Set("nonce", "attacker-chosen-nonce-0123456789")
		auth.RawQuery = q.Encode()
		cb := e.authorize(t, auth.String(), alice)
		if st := e.callback(t, c, cb.Query()); st != http.StatusBadRequest || e.hasSession(t, c) {
			t.Fatalf("nonce mismatch: %d", st)
		}
	})
	t.Run("state from another browser", func(t *testing.T) {
		a, b := e.client(t), e.client(t)
		cb := e.authorize(t, e.startLogin(t, a).String(), alice)
		if st := e.callback(t, b, cb.Query()); st != http.StatusBadRequest || e.hasSession(t, b) {
			t.Fatalf("foreign state: %d", st)
		}
	})
	t.Run("open redirect after sign-in falls back to /", func(t *testing.T) {
		for _, rd := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "https://127.0.0.1@evil.example/"} {
			if loc := e.returnAfterSignIn(t, rd); loc != "/" {
				t.Errorf("rd=%q: redirected to %q", rd, loc)
			}
		}
	})
}
