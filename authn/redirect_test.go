package authn

import (
	"bufio"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
)

// redirectTestDefault is the fallback in these tests; it is deliberately
// not "/" so that a relative path passing by accident is noticed.
const redirectTestDefault = "https://portal.example.com/"

// testAllowedHost accepts the host names of the tests.
func testAllowedHost(host string) bool {
	switch host {
	case "app.example.com", "wiki.example.com", "localhost", "127.0.0.1", "::1":
		return true
	}
	return strings.HasSuffix(host, ".apps.example.com") // a wildcard route
}

// testTargets is an external origin on https's default port.
var testTargets = ReturnTargets{Scheme: "https", Port: "443", HostAllowed: testAllowedHost}

// readRedirectCorpus reads testdata/open_redirects.txt: one entry a line,
// verbatim unless it starts with a double quote (then a Go string literal);
// "# " comments and blank lines are skipped.
func readRedirectCorpus(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("testdata/open_redirects.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case text == "" || text == "#" || strings.HasPrefix(text, "# "):
			continue
		case strings.HasPrefix(text, `"`):
			unquoted, err := strconv.Unquote(text)
			if err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
			text = unquoted
		}
		entries = append(entries, text)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestSafeReturnToRejectsOpenRedirectCorpus(t *testing.T) {
	corpus := readRedirectCorpus(t)
	if len(corpus) < 100 {
		t.Fatalf("corpus has %d entries, want at least 100", len(corpus))
	}
	corpus = append(corpus, "/"+strings.Repeat("a", maxReturnToBytes), "")
	for _, raw := range corpus {
		if got := SafeReturnTo(raw, testTargets, redirectTestDefault); got != redirectTestDefault {
			t.Errorf("SafeReturnTo(%q) = %q, want the default", raw, got)
		}
	}
	// With no allowed hosts at all, absolute URLs fall back too.
	if got := SafeReturnTo("https://app.example.com/", ReturnTargets{Scheme: "https", Port: "443"}, "/"); got != "/" {
		t.Errorf("nil allowedHosts accepted %q", got)
	}
}

func TestSafeReturnToAccepts(t *testing.T) {
	for _, raw := range []string{
		"/",
		"/app",
		"/app/",
		"/app/docs/page-2.html",
		"/search?q=a+b&lang=en",
		"/search?next=https://evil.com",
		"/search?q=//evil.com",
		"/docs#section-2",
		"/docs#//fragment",
		"/caf%C3%A9/menu",
		"/a%2Fb",
		"/~user/x",
		"/.well-known/thing",
		"/a.b/c..d",
		"https://app.example.com",
		"https://app.example.com/",
		"https://app.example.com/docs?x=1#top",
		"https://APP.Example.COM/",
		"https://app.example.com./",
		"https://app.example.com:443/",
		"https://wiki.example.com/Main_Page",
		"https://app.example.com//double",
		"https://x.apps.example.com/x",
		"https://a.b.apps.example.com:443/",
		"https://localhost/",
		"https://[::1]/",
	} {
		if got := SafeReturnTo(raw, testTargets, redirectTestDefault); got != raw {
			t.Errorf("SafeReturnTo(%q) = %q, want it unchanged", raw, got)
		}
	}
}

// TestSafeReturnToAsksForHostNames checks which name HostAllowed sees.
func TestSafeReturnToAsksForHostNames(t *testing.T) {
	for raw, want := range map[string]string{
		"https://App.Example.com./":    "app.example.com",
		"https://app.example.com:443/": "app.example.com",
		"https://[::1]/":               "::1",
	} {
		var asked []string
		targets := ReturnTargets{Scheme: "https", Port: "443", HostAllowed: func(host string) bool { asked = append(asked, host); return false }}
		SafeReturnTo(raw, targets, "/")
		if len(asked) != 1 || asked[0] != want {
			t.Errorf("SafeReturnTo(%q) asked %q, want [%q]", raw, asked, want)
		}
	}
}

// TestSafeReturnToOnlyExternalPort: issue 12.8, a wildcard route host on
// any port was honoured. Only the external origin's scheme and port are
// accepted, for exact and wildcard hosts alike.
func TestSafeReturnToOnlyExternalPort(t *testing.T) {
	for _, tc := range []struct {
		external string
		accept   []string
		refuse   []string
	}{
		{"https://portal.example.com",
			[]string{"https://x.apps.example.com/x", "https://x.apps.example.com:443/x", "https://app.example.com/"},
			[]string{"https://x.apps.example.com:4444/x", "https://x.apps.example.com:8443/", "https://app.example.com:8443/",
				"https://app.example.com:80/", "http://localhost/", "http://localhost:443/", "https://localhost:8080/"}},
		{"https://portal.example.com:8443",
			[]string{"https://x.apps.example.com:8443/x", "https://app.example.com:8443/dashboard", "https://[::1]:8443/"},
			[]string{"https://x.apps.example.com/x", "https://app.example.com/", "https://app.example.com:443/",
				"https://x.apps.example.com:4444/", "http://localhost:8443/"}},
		{"http://localhost:8080",
			[]string{"http://localhost:8080/", "http://127.0.0.1:8080/x", "http://[::1]:8080/"},
			[]string{"http://localhost/", "http://localhost:80/", "https://localhost:8080/", "http://127.0.0.1:8443/x",
				"http://app.example.com:8080/"}},
	} {
		ext, err := url.Parse(tc.external)
		if err != nil {
			t.Fatal(err)
		}
		targets := ReturnTargetsFor(ext, testAllowedHost)
		for _, raw := range tc.accept {
			if got := SafeReturnTo(raw, targets, redirectTestDefault); got != raw {
				t.Errorf("external %s: SafeReturnTo(%q) = %q, want it unchanged", tc.external, raw, got)
			}
		}
		for _, raw := range tc.refuse {
			if got := SafeReturnTo(raw, targets, redirectTestDefault); got != redirectTestDefault {
				t.Errorf("external %s: SafeReturnTo(%q) = %q, want the default", tc.external, raw, got)
			}
		}
	}
}

// FuzzSafeReturnTo checks the invariant: the result is the default, or a
// URL without userinfo that is either a path starting with exactly one
// "/" and no host, or on an allowed host.
func FuzzSafeReturnTo(f *testing.F) {
	for _, seed := range []string{
		"/", "/app?x=1", "//evil.com", "/\\evil.com", "/%09/evil.com", "https://app.example.com/",
		"https://app.example.com@evil.com", "https://app.example.com:8443/", "http://localhost:8080/",
		"https://x.apps.example.com:4444/x", "https://x.apps.example.com/", "https://[::1]:443/",
		"/%2F%2Fevil.com", "javascript:alert(1)", "https://evil.com\\@app.example.com", "/..//evil.com",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := SafeReturnTo(raw, testTargets, redirectTestDefault)
		if got == redirectTestDefault {
			return
		}
		if got != raw {
			t.Fatalf("result %q is neither the input nor the default", got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted %q does not parse: %v", got, err)
		}
		if u.User != nil {
			t.Fatalf("accepted %q has userinfo", got)
		}
		if u.Host == "" {
			if u.Scheme != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.HasPrefix(got, "//") {
				t.Fatalf("accepted relative %q can leave the origin (scheme %q, path %q)", got, u.Scheme, u.Path)
			}
			return
		}
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if u.Scheme != testTargets.Scheme || (u.Port() != "" && u.Port() != testTargets.Port) {
			t.Fatalf("accepted %q on scheme %q port %q, not the external origin's", got, u.Scheme, u.Port())
		}
		if !testAllowedHost(host) {
			t.Fatalf("accepted %q on host %q that is not allowed", got, host)
		}
	})
}
