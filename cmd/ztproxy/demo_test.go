//go:build !ztproxy_nodemo

package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

var hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// signInDemo follows the demo OP's login form the way a browser would.
func signInDemo(t *testing.T, c *http.Client, start, user, password string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	if !strings.Contains(page, "NOT for production") {
		t.Fatalf("expected the demo OP's login page, got %d at %s:\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	form := url.Values{"username": {user}, "password": {password}}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	loginURL, _ := resp.Request.URL.Parse("/login")
	resp, err = c.PostForm(loginURL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// TestDemoSmoke runs `ztproxy demo` as the README tells a newcomer to,
// signs in with a printed user, and reaches the demo app.
func TestDemoSmoke(t *testing.T) {
	dir := t.TempDir()
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	idp := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p := startProc(t, admin, public, "demo", "--listen", public, "--admin", admin, "--idp-listen", idp, "--dir", dir)
	out := p.output()
	passwords := map[string]string{}
	for _, m := range regexp.MustCompile(`(alice|bob)\s+password (\S+)`).FindAllStringSubmatch(out, -1) {
		passwords[m[1]] = m[2]
	}
	if passwords["alice"] == "" || passwords["bob"] == "" || !strings.Contains(out, "NOT for production") {
		t.Fatalf("banner lacks users or the warning:\n%s", out)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "certs", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	newClient := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	base := "https://localhost:" + strings.Split(public, ":")[1]

	aliceClient := newClient()
	resp, body := signInDemo(t, aliceClient, base+"/hello", "alice", passwords["alice"])
	if resp.StatusCode != 200 || !strings.Contains(body, "alice@demo.ztproxy.dev") || resp.Request.URL.Path != "/hello" {
		t.Fatalf("alice: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	// /admin needs a security key: alice has none yet, so she lands on
	// the enrollment page (her sign-in is fresh).
	resp, body = get(t, aliceClient, base+"/admin", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/.ztp/stepup/enroll" || !strings.Contains(body, "Add a security key") {
		t.Fatalf("alice on /admin: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, body = signInDemo(t, newClient(), base+"/hello", "bob", passwords["bob"])
	if resp.StatusCode != 403 {
		t.Fatalf("bob: %d %s", resp.StatusCode, body)
	}
	resp, body = signInDemo(t, newClient(), base+"/hello", "alice", "wrong-password")
	if resp.StatusCode != 200 || !strings.Contains(body, "Wrong username or password") {
		t.Fatalf("wrong password: %d %s", resp.StatusCode, body)
	}
	status, err := newClient().Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, status.Body)
	status.Body.Close()
	if status.StatusCode != 200 {
		t.Fatalf("status: %d", status.StatusCode)
	}
	dresp, dbody := get(t, tlsClient(t, filepath.Join(dir, "certs"), true), base+"/device", nil)
	if dresp.StatusCode != 200 || !strings.Contains(dbody, "dev-laptop") {
		t.Fatalf("device: %d %s", dresp.StatusCode, dbody)
	}
	checkDemoLaptop(t, dir, base, out, passwords, newClient)
}

// checkDemoLaptop (issue 16): the demo's device route admits alice with
// her enrolled demo device, not alice without it, not bob with it.
func checkDemoLaptop(t *testing.T, dir, base, banner string, passwords map[string]string, newClient func() *http.Client) {
	t.Helper()
	if !strings.Contains(banner, "alice-device.p12") {
		t.Errorf("banner does not offer the demo device:\n%s", banner)
	}
	withDevice := func() *http.Client {
		c := newClient()
		pair, err := loadKeyPair(filepath.Join(dir, "certs", "alice-device.pem"), filepath.Join(dir, "certs", "alice-device-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		c.Transport.(*http.Transport).TLSClientConfig.Certificates = pair
		return c
	}
	if resp, body := signInDemo(t, withDevice(), base+"/laptop", "alice", passwords["alice"]); resp.StatusCode != 200 || !strings.Contains(body, "alice@demo.ztproxy.dev") {
		t.Errorf("alice with her demo device on /laptop: %d %s", resp.StatusCode, body)
	}
	if resp, _ := signInDemo(t, newClient(), base+"/laptop", "alice", passwords["alice"]); resp.StatusCode != 403 {
		t.Errorf("alice without a device on /laptop: %d", resp.StatusCode)
	}
	if resp, _ := signInDemo(t, withDevice(), base+"/laptop", "bob", passwords["bob"]); resp.StatusCode != 403 {
		t.Errorf("bob with alice's demo device on /laptop: %d", resp.StatusCode)
	}
}

// TestDemoSignOutEverywhere: issue 17, the demo's identity provider can
// trigger a back-channel logout. "Sign out everywhere" on its /account
// page ends alice's proxy session at once.
func TestDemoSignOutEverywhere(t *testing.T) {
	idp := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	d := startDemo(t, t.TempDir(), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), idp)
	pem, err := os.ReadFile(filepath.Join(d.dir, "certs", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := d.base
	if resp, body := signInDemo(t, c, base+"/hello", "alice", d.passwords["alice"]); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	resp, page := get(t, c, "http://"+idp+"/account", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "Sign out everywhere") {
		t.Fatalf("account page: %d %s", resp.StatusCode, page)
	}
	forged, err := c.PostForm("http://"+idp+"/account/signout-everywhere", url.Values{"csrf": {"forged"}})
	if err != nil {
		t.Fatal(err)
	}
	if forged.Body.Close(); forged.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged form: %d, want 403", forged.StatusCode)
	}
	form := url.Values{}
	for _, hm := range hiddenInputRE.FindAllStringSubmatch(page, -1) {
		form.Set(hm[1], html.UnescapeString(hm[2]))
	}
	resp, err = c.PostForm("http://"+idp+"/account/signout-everywhere", form)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "1 application(s)") {
		t.Fatalf("sign out everywhere: %d %s", resp.StatusCode, body)
	}
	resp, err = noFollow(c).Get(base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("the proxy session after sign out everywhere: %d, want 302 to sign-in", resp.StatusCode)
	}
}

// TestDemoSignOutEverywhereChromium: issue 17, the same in headless
// Chromium: alice signs in, opens the demo identity provider's account
// page, presses "Sign out everywhere", and the app sends her back to
// sign-in. Screenshots are saved (ZTP_SCREENSHOT_DIR copies them).
func TestDemoSignOutEverywhereChromium(t *testing.T) {
	idp := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	d := startDemo(t, t.TempDir(), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), idp)
	br := testenv.StartBrowser(t, testenv.BrowserOptions{IgnoreCertErrors: true})
	shot := newShots(t)
	tab := br.NewTab(t)
	tab.Navigate(t, d.base+"/")
	tab.WaitURLPrefix(t, d.issuer+"/login", 10*time.Second)
	tab.LoginForm(t, "alice", d.passwords["alice"], "")
	tab.WaitText(t, "Headers ztproxy sent this app", 10*time.Second)
	tab.Navigate(t, d.issuer+"/account")
	tab.WaitText(t, "Sign out everywhere", 10*time.Second)
	shot.take(t, tab, "idp-account")
	tab.Click(t, "#signout-everywhere")
	tab.WaitText(t, "1 application(s) were told", 10*time.Second)
	shot.take(t, tab, "idp-signed-out-everywhere")
	tab.Navigate(t, d.base+"/")
	tab.WaitURLPrefix(t, d.issuer+"/login", 10*time.Second)
	shot.take(t, tab, "app-asks-to-sign-in-again")
}
