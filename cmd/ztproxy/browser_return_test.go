package main

import (
	"net/http"
	"net/url"
	"testing"

	"ztproxy/internal/testenv"
)

// returnAfterSignIn signs alice in with rd as the return URL, in a fresh
// cookie jar, and returns where the callback sends the browser.
func (e *browserEnv) returnAfterSignIn(t *testing.T, rd string) string {
	t.Helper()
	c := e.client(t)
	resp, err := noFollow(c).Get(e.base + "/.ztp/login?rd=" + url.QueryEscape(rd))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	auth, err := resp.Location()
	if err != nil {
		t.Fatalf("login start for rd=%q: %d %v", rd, resp.StatusCode, err)
	}
	cb := e.authorize(t, auth.String(), e.op.User(t, "alice"))
	resp, err = noFollow(c).Get(cb.String())
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
