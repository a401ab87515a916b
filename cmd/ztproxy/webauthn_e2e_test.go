package main

import (
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

const webauthnPolicies = `
@id("eng-uses-app")
permit (principal, action, resource) when { principal in Group::"eng" };

@id("admin-needs-security-key")
@step_up("webauthn")
@reason("the admin area needs your security key within 15 minutes")
forbid (principal, action, resource == Route::"admin")
unless { context.auth.amr.contains("webauthn") && context.auth.age_seconds < 900 };
`

// TestWebAuthnStepUpChromium drives real headless Chromium with CDP
// virtual authenticators against the real binary and the real OP: the
// admin route needs a proxy-verified security key; the user enrolls one
// (their IdP sign-in is fresh), verifies with it and reaches the app; a
// second authenticator that was never enrolled gets nowhere, cannot
// remove the first one, and the key owner can.
func TestWebAuthnStepUpChromium(t *testing.T) {
	// WebAuthn needs a domain name: browsers refuse it on IP addresses.
	e := newStepUpEnv(t, "localhost", webauthnPolicies, "webauthn: {rp_name: \"ztproxy e2e\"}\n")
	p := e.proc
	alice := e.op.User(t, "alice")
	br := testenv.StartBrowser(t, testenv.BrowserOptions{IgnoreCertErrors: true})

	signIn := func(t *testing.T, tab *testenv.Tab) {
		t.Helper()
		tab.Navigate(t, e.base+"/home")
		tab.WaitURLPrefix(t, e.op.Issuer+"/interaction/", 10*time.Second)
		tab.LoginForm(t, alice.Sub, alice.Password, "")
		tab.WaitText(t, "GET /home for alice@ztp.test", 10*time.Second)
	}

	tab := br.NewTab(t)
	key := tab.AddVirtualAuthenticator(t)
	signIn(t, tab)
	t.Run("enroll a key, pass step-up, reach the admin route", func(t *testing.T) {
		tab.Navigate(t, e.base+"/admin/panel?x=1")
		// No key yet: the verify page sends the user to enrollment.
		tab.WaitText(t, "Add a security key", 10*time.Second)
		if u := tab.URL(t); !strings.HasPrefix(u, e.base+"/.ztp/stepup/enroll?") {
			t.Fatalf("enrollment page at %s", u)
		}
		tab.Fill(t, "#ztp-name", "e2e key")
		tab.Click(t, "#ztp-go")
		// Enrollment, then verification with the new key, then back.
		tab.WaitText(t, "GET /admin/panel for alice@ztp.test", 15*time.Second)
		if u := tab.URL(t); u != e.base+"/admin/panel?x=1" {
			t.Fatalf("returned to %s", u)
		}
		if n := len(key.Credentials(t)); n != 1 {
			t.Fatalf("authenticator holds %d credentials", n)
		}
		out := p.output()
		if !strings.Contains(out, `"security key enrolled"`) || !strings.Contains(out, `"step-up with security key"`) {
			t.Fatalf("log lacks enrollment/step-up:\n%s", out)
		}
		tab.Navigate(t, e.base+"/.ztp/whoami")
		text := tab.Text(t)
		for _, want := range []string{"Security keys", "e2e key", "hwk", "webauthn"} {
			if !strings.Contains(text, want) {
				t.Errorf("whoami lacks %q:\n%s", want, text)
			}
		}
	})

	other := br.NewIncognito(t)
	t.Run("a second authenticator that is not enrolled fails", func(t *testing.T) {
		stranger := other.AddVirtualAuthenticator(t)
		signIn(t, other)
		other.Navigate(t, e.base+"/admin/panel")
		if u := other.URL(t); !strings.HasPrefix(u, e.base+"/.ztp/stepup/webauthn?") {
			t.Fatalf("step-up page at %s", u)
		}
		other.WaitText(t, "That did not work", 15*time.Second)
		if len(stranger.Credentials(t)) != 0 {
			t.Fatal("the stranger's authenticator created a credential")
		}
		other.Navigate(t, e.base+"/admin/panel")
		if u := other.URL(t); !strings.HasPrefix(u, e.base+"/.ztp/stepup/webauthn?") {
			t.Fatalf("admin reached without the enrolled key: %s", u)
		}
		// Removing the owner's key needs that key: the form sends this
		// session to verification instead.
		other.Navigate(t, e.base+"/.ztp/whoami")
		other.Click(t, "form[action='/.ztp/stepup/keys/remove'] button")
		other.WaitText(t, "That did not work", 15*time.Second)
		if n := len(key.Credentials(t)); n != 1 || strings.Contains(p.output(), `"security key removed"`) {
			t.Fatalf("key removed by a session without it (%d credentials)", n)
		}
	})
	t.Run("the key owner removes the key", func(t *testing.T) {
		tab.Navigate(t, e.base+"/.ztp/whoami")
		tab.Click(t, "form[action='/.ztp/stepup/keys/remove'] button")
		tab.WaitText(t, "No security key yet", 10*time.Second)
		if !strings.Contains(p.output(), `"security key removed"`) {
			t.Fatalf("removal not logged:\n%s", p.output())
		}
	})
}
