package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// returnAfterSignIn signs alice in with rd as the return URL, in a fresh
// cookie jar, and returns where the callback sends the browser.
func (e *browserEnv) returnAfterSignIn(t *testing.T, rd string) string {
	t.Helper()
	c := e.client(t)
	cb := e.authorize(t, e.startLoginTo(t, c, rd).String(), e.op.User(t, "alice"))
	resp, err := noFollow(c).Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback for rd=%q: %d", rd, resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// TestBrowserReturnURLPorts: issue 12.8, with a route on "*.example.test"
// a return URL on https://x.example.test:4444 was honoured after sign-in.
// Only the external port is accepted, for wildcard and exact hosts alike.
func TestBrowserReturnURLPorts(t *testing.T) {
	e := newBrowserEnvWith(t, testenv.OIDCOptions{}, "1h", "  - {name: wild, host: \"*.example.test\", upstream: %[1]q, auth: public}\n")
	ext, _ := url.Parse(e.base)
	port := ext.Port()
	for rd, want := range map[string]string{
		"https://x.example.test:" + port + "/x": "https://x.example.test:" + port + "/x",
		"https://127.0.0.1:" + port + "/hello":  "https://127.0.0.1:" + port + "/hello",
		"/hello?x=1":                            "/hello?x=1",
		"https://x.example.test:4444/x":         "/",
		"https://x.example.test/x":              "/",
		"https://a.b.example.test:4444/":        "/",
		"https://127.0.0.1:4444/hello":          "/",
		"https://127.0.0.1/hello":               "/",
		"http://127.0.0.1:" + port + "/hello":   "/",
		"https://example.test:" + port + "/":    "/",
		"https://x.example.test.evil:" + port:   "/",
	} {
		if got := e.returnAfterSignIn(t, rd); got != want {
			t.Errorf("rd=%q: sent to %q, want %q", rd, got, want)
		}
	}
}

// TestBrowserNewestSignInAttemptsKept: issue 12.10, eight sign-ins started
// within one second kept attempts 1-4 and 8 while 5-7 got a bare 400. The
// five newest must complete and the three oldest get a page that says the
// attempt expired and to start again. A Go cookie jar plays the browser
// (curl 7.88 mishandles deleted cookies), against the real OP.
func TestBrowserNewestSignInAttemptsKept(t *testing.T) {
	e := newBrowserEnv(t, testenv.OIDCOptions{}, "1h")
	alice := e.op.User(t, "alice")
	c := e.client(t)
	// Start at the top of a second so that all eight fall within it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	second := time.Now().Unix()
	var auths []*url.URL
	for i := 1; i <= 8; i++ {
		auths = append(auths, e.startLoginTo(t, c, fmt.Sprintf("/tab%d", i)))
	}
	if time.Now().Unix() != second {
		t.Fatalf("the eight sign-ins took more than one second to start; the machine is too slow for this test")
	}
	for i, auth := range auths {
		tab := i + 1
		cb := e.authorize(t, auth.String(), alice)
		req, _ := http.NewRequest("GET", cb.String(), nil)
		req.Header.Set("Accept", "text/html")
		resp, err := noFollow(c).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if tab > 3 {
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != fmt.Sprintf("/tab%d", tab) {
				t.Errorf("tab %d (one of the 5 newest): %d to %q: %s", tab, resp.StatusCode, resp.Header.Get("Location"), body)
			}
			continue
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Sign-in attempt expired") ||
			!strings.Contains(body, "replaced by newer ones") || !strings.Contains(body, "Start again") ||
			!strings.Contains(body, "sign_in_superseded") {
			t.Errorf("tab %d (one of the 3 oldest): %d %s", tab, resp.StatusCode, body)
		}
	}
}
