//go:build !ztproxy_nodemo

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// demoRun is a running `ztproxy demo` and what its banner said.
type demoRun struct {
	proc              *proc
	dir, base, issuer string
	passwords         map[string]string
}

// startDemo runs `ztproxy demo` on the given addresses and reads its
// banner.
func startDemo(t *testing.T, dir, public, admin, idp string) *demoRun {
	t.Helper()
	p := startProc(t, admin, public, "demo", "--listen", public, "--admin", admin, "--idp-listen", idp, "--dir", dir)
	var out string
	waitFor(t, 10*time.Second, "the demo banner", func() bool {
		out = p.output()
		return strings.Contains(out, "Stop with Ctrl-C")
	})
	d := &demoRun{proc: p, dir: dir, base: "https://localhost:" + strings.Split(public, ":")[1], passwords: map[string]string{}}
	for _, m := range regexp.MustCompile(`(alice|bob)\s+password (\S+)`).FindAllStringSubmatch(out, -1) {
		d.passwords[m[1]] = m[2]
	}
	if m := regexp.MustCompile(`identity:\s+(\S+)`).FindStringSubmatch(out); m != nil {
		d.issuer = m[1]
	}
	if d.passwords["alice"] == "" || d.passwords["bob"] == "" || d.issuer != "http://"+idp {
		t.Fatalf("banner lacks users or the identity %s:\n%s", idp, out)
	}
	return d
}

// stop ends the demo as Ctrl-C does and waits for it.
func (d *demoRun) stop(t *testing.T) {
	t.Helper()
	d.proc.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.proc.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the demo did not stop:\n%s", d.proc.output())
	}
}

// shots saves numbered screenshots under the test's temp dir and, with
// ZTP_SCREENSHOT_DIR set, copies them there for a person to look at.
type shots struct {
	dir  string
	n    int
	copy string
}

func newShots(t *testing.T) *shots {
	s := &shots{dir: filepath.Join(t.TempDir(), "screenshots"), copy: os.Getenv("ZTP_SCREENSHOT_DIR")}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *shots) take(t *testing.T, tab *testenv.Tab, name string) {
	t.Helper()
	s.n++
	file := fmt.Sprintf("%02d-%s.png", s.n, name)
	tab.FullScreenshot(t, filepath.Join(s.dir, file))
	if s.copy != "" {
		data, err := os.ReadFile(filepath.Join(s.dir, file))
		if err == nil {
			os.MkdirAll(s.copy, 0o755)
			err = os.WriteFile(filepath.Join(s.copy, file), data, 0o644)
		}
		if err != nil {
			t.Errorf("copying the screenshot: %v", err)
		}
	}
}

// TestDemoFirstHour walks the README's first section in real headless
// Chromium against the real binary's `ztproxy demo`, as a newcomer does
// (issue 15): sign in as alice, the app page, whoami and its links, /admin
// with a security key (enrolment and step-up), an operator command
// against the running demo, sign-out, bob's denial, a failed key, a
// second demo refused cleanly, and a restart that keeps identities and
// keys. Screenshots of every page are saved under the test's temp dir.
func TestDemoFirstHour(t *testing.T) {
	dir := t.TempDir()
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	idp := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	d := startDemo(t, dir, public, admin, idp)
	br := testenv.StartBrowser(t, testenv.BrowserOptions{IgnoreCertErrors: true})
	shot := newShots(t)
	alice := br.NewTab(t)
	key := alice.AddVirtualAuthenticator(t)

	signIn := func(t *testing.T, tab *testenv.Tab, user, path string) {
		t.Helper()
		tab.Navigate(t, d.base+path)
		tab.WaitURLPrefix(t, d.issuer+"/login", 10*time.Second)
		tab.LoginForm(t, user, d.passwords[user], "")
	}

	t.Run("sign in as alice and see the app page", func(t *testing.T) {
		alice.Navigate(t, d.base+"/")
		alice.WaitURLPrefix(t, d.issuer+"/login", 10*time.Second)
		shot.take(t, alice, "idp-sign-in")
		alice.LoginForm(t, "alice", d.passwords["alice"], "")
		alice.WaitText(t, "Headers ztproxy sent this app", 10*time.Second)
		shot.take(t, alice, "app-page")
		text := alice.Text(t)
		// Issue 15.10: readable times, an explanation, links.
		for _, want := range []string{"as alice@demo.ztproxy.dev", "X-Ztp-Assertion", "expires (assertions are short-lived)", " UTC (in ", "Who am I", "Sign out"} {
			if !strings.Contains(text, want) {
				t.Errorf("app page lacks %q:\n%s", want, text)
			}
		}
		if regexp.MustCompile(`\de\+0\d`).MatchString(text) {
			t.Errorf("app page shows a time in exponent notation:\n%s", text)
		}
	})

	t.Run("whoami links work", func(t *testing.T) {
		alice.Click(t, `nav a[href="/.ztp/whoami"]`)
		alice.WaitText(t, "Your applications", 10*time.Second)
		shot.take(t, alice, "whoami")
		// Issue 15.1: the links carry the demo's port.
		alice.Click(t, fmt.Sprintf(`a[href="%s/status"]`, d.base))
		if u := alice.URL(t); u != d.base+"/status" || alice.Status(t) != 200 {
			t.Fatalf("status link led to %s (%d)", u, alice.Status(t))
		}
		alice.Navigate(t, d.base+"/.ztp/whoami")
		var who struct {
			Routes []struct{ Name, URL, Decision string }
		}
		c := tlsClient(t, filepath.Join(dir, "certs"), false)
		cookie := alice.Cookie(t, d.base, "_ztp_session")
		_, body := get(t, c, d.base+"/.ztp/whoami", map[string]string{"Accept": "application/json", "Cookie": "_ztp_session=" + cookie.Value})
		if err := json.Unmarshal([]byte(body), &who); err != nil || len(who.Routes) == 0 {
			t.Fatalf("whoami JSON: %v\n%s", err, body)
		}
		for _, r := range who.Routes {
			if !strings.HasPrefix(r.URL, d.base+"/") {
				t.Errorf("whoami JSON route %s: url %q lacks %s", r.Name, r.URL, d.base)
			}
		}
	})

	t.Run("admin asks for a key: enrol, step up, reach it", func(t *testing.T) {
		alice.Click(t, fmt.Sprintf(`a[href="%s/admin"]`, d.base))
		alice.WaitText(t, "Add a security key", 10*time.Second)
		if u := alice.URL(t); !strings.HasPrefix(u, d.base+"/.ztp/stepup/enroll?") {
			t.Fatalf("enrolment page at %s", u)
		}
		// Issue 15.4: the page says why a key is asked for.
		if text := alice.Text(t); !strings.Contains(text, "Why: the admin area needs your security key") || !strings.Contains(text, "Cancel and go to Who am I") {
			t.Errorf("enrolment page:\n%s", text)
		}
		shot.take(t, alice, "enroll")
		alice.Fill(t, "#ztp-name", "demo key")
		alice.Click(t, "#ztp-go")
		alice.WaitText(t, "You reached /admin through ztproxy", 15*time.Second)
		shot.take(t, alice, "admin")
		if n := len(key.Credentials(t)); n != 1 {
			t.Fatalf("authenticator holds %d credentials", n)
		}
		alice.Navigate(t, d.base+"/.ztp/whoami")
		alice.WaitText(t, "demo key", 5*time.Second)
		shot.take(t, alice, "whoami-with-key")
	})

	t.Run("operator commands reach the running demo", func(t *testing.T) {
		// Issue 15.12: no environment variables, no store lock.
		code, out := runZtproxy(t, "demo", "keys", "list", "alice", "--dir", dir)
		if code != 0 || !strings.Contains(out, `"name": "demo key"`) || !strings.Contains(out, d.issuer+"#alice") {
			t.Fatalf("demo keys list (%d):\n%s", code, out)
		}
		// Profiles are written behind (the demo flushes every 2 s).
		waitFor(t, 15*time.Second, "alice's profile", func() bool {
			code, out = runZtproxy(t, "demo", "risk", "show", "alice@demo.ztproxy.dev", "--dir", dir)
			return code == 0
		})
		if code != 0 || !strings.Contains(out, `"requests"`) || strings.Contains(out, "0001-01-01") || strings.Contains(out, "UserID") {
			t.Fatalf("demo risk show by email (%d):\n%s", code, out)
		}
	})

	t.Run("sign out", func(t *testing.T) {
		alice.Navigate(t, d.base+"/")
		alice.Click(t, `nav a[href="/.ztp/logout"]`)
		alice.WaitText(t, "You are signed out", 10*time.Second)
		shot.take(t, alice, "signed-out")
	})

	t.Run("bob is denied with an explanation, and never asked for a key", func(t *testing.T) {
		bob := br.NewIncognito(t)
		signIn(t, bob, "bob", "/")
		bob.WaitText(t, "Access denied", 10*time.Second)
		shot.take(t, bob, "bob-denied")
		text := bob.Text(t)
		for _, want := range []string{"signed in as bob@demo.ztproxy.dev (Bob Contractor)", "the app is for engineers (group eng)",
			"ask your administrator", "request id", "Who am I", "Sign in as someone else"} {
			if !strings.Contains(text, want) {
				t.Errorf("denial page lacks %q:\n%s", want, text)
			}
		}
		if bob.Status(t) != 403 {
			t.Errorf("status %d", bob.Status(t))
		}
		// Issue 15.4: no enrolment for someone /admin never allows.
		bob.Navigate(t, d.base+"/admin")
		if u := bob.URL(t); strings.Contains(u, "/.ztp/stepup") || bob.Status(t) != 403 {
			t.Fatalf("bob on /admin: %s (%d)", u, bob.Status(t))
		}
		shot.take(t, bob, "bob-admin-denied")
		bob.Click(t, `a.button[href="/.ztp/whoami"]`)
		bob.WaitText(t, "Your applications", 10*time.Second)
		shot.take(t, bob, "bob-whoami")
		if text := bob.Text(t); strings.Contains(text, "step_up") || strings.Contains(text, "admin") {
			t.Errorf("bob's whoami offers admin:\n%s", text)
		}
	})

	t.Run("a key that is not registered gets a plain explanation", func(t *testing.T) {
		other := br.NewIncognito(t)
		other.AddVirtualAuthenticator(t)
		signIn(t, other, "alice", "/admin")
		other.WaitText(t, "That did not work", 15*time.Second)
		shot.take(t, other, "unregistered-key")
		text := other.Text(t)
		// Issue 15.8: no raw browser text, no doubled period.
		if !strings.Contains(text, "no registered key answered") || strings.Contains(text, "..") || strings.Contains(text, "privacy-considerations") {
			t.Errorf("error text:\n%s", text)
		}
		other.Click(t, `a[href="/.ztp/whoami"]`)
		if u := other.URL(t); u != d.base+"/.ztp/whoami" {
			t.Errorf("Cancel led to %s", u)
		}
	})

	t.Run("a second demo is refused and the first keeps working", func(t *testing.T) {
		cfg := filepath.Join(dir, demoConfigFile)
		before, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		code, out := runZtproxy(t, "demo", "--listen", public, "--admin", admin, "--idp-listen", idp, "--dir", dir)
		if code != 1 || !strings.Contains(out, "another ztproxy demo is already running at "+d.base) {
			t.Fatalf("second demo (%d):\n%s", code, out)
		}
		code, out = runZtproxy(t, "demo", "--listen", public, "--admin", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
			"--idp-listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "--dir", t.TempDir())
		if code != 1 || !strings.Contains(out, public+" (--listen) is in use") {
			t.Fatalf("second demo on the same port (%d):\n%s", code, out)
		}
		if after, _ := os.ReadFile(cfg); string(after) != string(before) {
			t.Fatal("the refused demo rewrote the running demo's config")
		}
		tab := br.NewIncognito(t)
		signIn(t, tab, "alice", "/hello")
		tab.WaitText(t, "You reached /hello", 10*time.Second)
	})

	t.Run("logs carry no duplicate keys and no routine handshake warnings", func(t *testing.T) {
		// Issue 15.13: a client that connects and leaves is routine.
		c, err := net.Dial("tcp", public)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "\x16\x03\x01")
		c.Close()
		time.Sleep(200 * time.Millisecond)
		for _, line := range strings.Split(d.proc.output(), "\n") {
			if strings.Count(line, " msg=") > 1 || (strings.Contains(line, "level=WARN") && strings.Contains(line, "handshake") && strings.Contains(line, "EOF")) {
				t.Errorf("log line: %s", line)
			}
		}
	})

	t.Run("after a restart the same key still verifies alice", func(t *testing.T) {
		// Issue 15.3: a stable issuer keeps user ids, so keys still match.
		d.stop(t)
		d = startDemo(t, dir, public, admin, idp)
		signIn(t, alice, "alice", "/admin")
		alice.WaitText(t, "You reached /admin through ztproxy", 15*time.Second)
		shot.take(t, alice, "admin-after-restart")
		if !strings.Contains(d.proc.output(), `msg="step-up with security key"`) {
			t.Errorf("no step-up logged after the restart:\n%s", d.proc.output())
		}
	})
	t.Logf("screenshots in %s", shot.dir)
}
