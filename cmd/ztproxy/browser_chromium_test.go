package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// TestBrowserChromium drives real headless Chromium through sign-in at the
// real test OP (npm oidc-provider) and the proxy's pages. The dev CA is
// not in Chromium's trust store, so certificate errors are ignored for
// this test browser only.
func TestBrowserChromium(t *testing.T) {
	e := newBrowserEnv(t, testenv.OIDCOptions{}, "1h")
	br := testenv.StartBrowser(t, testenv.BrowserOptions{IgnoreCertErrors: true})
	alice, mallory := e.op.User(t, "alice"), e.op.User(t, "mallory")

	tab := br.NewTab(t)
	t.Run("sign in and reach the app", func(t *testing.T) {
		tab.Navigate(t, e.base+"/hello?from=chromium")
		tab.WaitURLPrefix(t, e.op.Issuer+"/interaction/", 10*time.Second)
		tab.LoginForm(t, alice.Sub, alice.Password, "")
		tab.WaitURLPrefix(t, e.base+"/hello?from=chromium", 10*time.Second)
		if got := tab.Text(t); got != "app says hello to alice@ztp.test" {
			t.Fatalf("app page: %q", got)
		}
		if h := e.lastSeen(); h.Get("X-Ztp-Assertion") == "" || strings.Contains(h.Get("Cookie"), "_ztp_session") {
			t.Fatalf("upstream headers: %v", h)
		}
		ck := tab.Cookie(t, e.base, "_ztp_session")
		if ck == nil || !ck.Secure || !ck.HTTPOnly || ck.SameSite != "Lax" {
			t.Fatalf("session cookie attributes: %+v", ck)
		}
	})
	t.Run("whoami page", func(t *testing.T) {
		tab.Navigate(t, e.base+"/.ztp/whoami")
		text := tab.Text(t)
		for _, want := range []string{"Who am I", "alice@ztp.test", "eng", "app", "allow", "eng-uses-app", "127.0.0.1"} {
			if !strings.Contains(text, want) {
				t.Errorf("whoami lacks %q:\n%s", want, text)
			}
		}
	})
	t.Run("several tabs sign in at once", func(t *testing.T) {
		first := br.NewIncognito(t)
		tabs := []*testenv.Tab{first, first.NewTab(t), first.NewTab(t)}
		for i, tb := range tabs {
			tb.Navigate(t, fmt.Sprintf("%s/tab%d", e.base, i))
			tb.WaitURLPrefix(t, e.op.Issuer+"/interaction/", 10*time.Second)
		}
		for i, tb := range tabs {
			tb.LoginForm(t, alice.Sub, alice.Password, "")
			tb.WaitURLPrefix(t, fmt.Sprintf("%s/tab%d", e.base, i), 10*time.Second)
			if got := tb.Text(t); got != "app says hello to alice@ztp.test" {
				t.Fatalf("tab %d: %q", i, got)
			}
		}
	})
	t.Run("denial page for a user outside the group", func(t *testing.T) {
		m := br.NewIncognito(t)
		m.Navigate(t, e.base+"/hello")
		m.WaitURLPrefix(t, e.op.Issuer+"/interaction/", 10*time.Second)
		m.LoginForm(t, mallory.Sub, mallory.Password, "")
		m.WaitText(t, "Access denied", 10*time.Second)
		if m.Status(t) != 403 || !strings.Contains(m.Text(t), "request id") || !strings.Contains(m.Text(t), "no policy permits this request") {
			t.Fatalf("denial page (%d): %s", m.Status(t), m.Text(t))
		}
	})
	t.Run("logout, then the old cookie is refused", func(t *testing.T) {
		old := tab.Cookie(t, e.base, "_ztp_session")
		tab.Navigate(t, e.base+"/.ztp/logout")
		// The OP's sign-out confirmation submits itself by script.
		tab.WaitText(t, "You are signed out. Close this tab", 10*time.Second)
		if u := tab.URL(t); !strings.HasPrefix(u, e.base+"/.ztp/signed-out") {
			t.Fatalf("signed-out page at %s", u)
		}
		if tab.Cookie(t, e.base, "_ztp_session") != nil {
			t.Fatal("session cookie not cleared")
		}
		thief := br.NewIncognito(t)
		thief.SetCookie(t, e.base, "_ztp_session", old.Value)
		thief.Navigate(t, e.base+"/hello")
		thief.WaitURLPrefix(t, e.op.Issuer+"/interaction/", 10*time.Second)
	})
}

// TestBrowserChromiumExpiryAndRefresh: in Chromium, 2-second IdP tokens
// are refreshed server-side while the 6-second session lasts (the cookie's
// Expires has whole seconds, and a loaded machine is slow: 4 seconds
// left too little margin); after the
// session's lifetime the browser goes back through the IdP (whose own
// session signs it straight in) and gets a new session.
func TestBrowserChromiumExpiryAndRefresh(t *testing.T) {
	e := newBrowserEnv(t, testenv.OIDCOptions{IDTokenTTL: 2 * time.Second, AccessTokenTTL: 2 * time.Second}, "6s")
	br := testenv.StartBrowser(t, testenv.BrowserOptions{IgnoreCertErrors: true})
	alice := e.op.User(t, "alice")
	tab := br.NewTab(t)
	tab.Navigate(t, e.base+"/one")
	tab.WaitURLPrefix(t, e.op.Issuer+"/interaction/", 10*time.Second)
	tab.LoginForm(t, alice.Sub, alice.Password, "")
	tab.WaitText(t, "app says hello to alice@ztp.test", 10*time.Second)
	first := tab.Cookie(t, e.base, "_ztp_session").Value

	time.Sleep(2200 * time.Millisecond) // the ID token expired; the session has not
	tab.Navigate(t, e.base+"/two")
	if got := tab.Text(t); got != "app says hello to alice@ztp.test" || tab.Status(t) != 200 {
		t.Fatalf("after token expiry: %d %q", tab.Status(t), got)
	}
	refreshed := tab.Cookie(t, e.base, "_ztp_session").Value
	if refreshed == first || strings.Count(e.proc.output(), `"signed in"`) != 1 || !strings.Contains(e.proc.output(), "session tokens refreshed") ||
		strings.Contains(e.proc.output(), "token refresh failed") {
		t.Fatalf("expected a server-side refresh without a new sign-in:\n%s", e.proc.output())
	}

	time.Sleep(4500 * time.Millisecond) // now the session itself has ended
	tab.Navigate(t, e.base+"/three")
	tab.WaitText(t, "app says hello to alice@ztp.test", 10*time.Second)
	if n := strings.Count(e.proc.output(), `"signed in"`); n != 2 {
		t.Fatalf("expired session did not go back through sign-in (%d sign-ins):\n%s", n, e.proc.output())
	}
}
