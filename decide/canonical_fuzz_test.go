package decide

import (
	"net/url"
	"strings"
	"testing"

	"ztproxy/internal/testenv"
)

// pathSeeds are the attack examples of issue 12.2 and their relatives.
var pathSeeds = testenv.PathAttackSeeds

// agreesWithServlet checks the judged path against a servlet container's
// reading (testenv.AgreesWithServlet).
func agreesWithServlet(t *testing.T, raw string, rp RequestPath) {
	t.Helper()
	testenv.AgreesWithServlet(t, raw, rp.Match, rp.Forward)
}

// FuzzParseRequestPath checks the invariants the router and policy rely
// on — the match path is absolute, has no dot segment, parameter,
// backslash, control byte or empty segment, and is a fixed point — and,
// differentially, that a servlet container reads every accepted path as
// the same match path (issue 12.2).
func FuzzParseRequestPath(f *testing.F) {
	for _, s := range pathSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rp, err := ParseRequestPath(in)
		if err != nil {
			return
		}
		got := rp.Match
		if !strings.HasPrefix(got, "/") || !strings.HasPrefix(rp.Forward, "/") {
			t.Fatalf("%q → %+v: not absolute", in, rp)
		}
		if strings.ContainsAny(got, "\\;%") || strings.Contains(got, "//") {
			t.Fatalf("%q → %q: backslash, parameter, escape or empty segment", in, got)
		}
		for _, seg := range strings.Split(got, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("%q → %q: dot segment survived", in, got)
			}
		}
		for i := 0; i < len(rp.Forward); i++ {
			if c := rp.Forward[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("%q → %q: control byte", in, rp.Forward)
			}
		}
		if rp.Params != (rp.Forward != got) && !strings.Contains(rp.Forward, ";") {
			t.Fatalf("%q → %+v: params flag disagrees with the forward path", in, rp)
		}
		if again, err := ParseRequestPath((&url.URL{Path: got}).EscapedPath()); err != nil || again.Match != got || again.Params {
			t.Fatalf("not a fixed point: %q → %q → %+v (%v)", in, got, again, err)
		}
		sent := (&url.URL{Path: rp.Forward}).EscapedPath()
		if again, err := ParseRequestPath(sent); err != nil || again != rp {
			t.Fatalf("the upstream's path reads differently: %q → %+v, sent %q → %+v (%v)", in, rp, sent, again, err)
		}
		agreesWithServlet(t, in, rp)
	})
}

// FuzzCanonicalHost checks that a canonical host is a fixed point, lower
// case, without trailing dot, and made only of host-name bytes.
func FuzzCanonicalHost(f *testing.F) {
	for _, s := range []string{"APP.Example.com.", "app.example.com:443", "[::1]:9000", "[::1]1234", "a@b", "evil.com/x",
		"app.example.com:0443", "app.example.com:", "[fe80::1%25eth0]", "127.0.0.1:8443", "x\x00y", "app..example.com"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, tls bool) {
		got := CanonicalHost(in, tls)
		if got == "" {
			return
		}
		if again := CanonicalHost(got, tls); again != got {
			t.Fatalf("%q → %q → %q", in, got, again)
		}
		if strings.ToLower(got) != got || strings.HasSuffix(hostWithoutPort(got), ".") {
			t.Fatalf("%q → %q: not lower case or trailing dot", in, got)
		}
		for i := 0; i < len(got); i++ {
			c := got[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.:[]", c) >= 0) {
				t.Fatalf("%q → %q: byte %q", in, got, c)
			}
		}
	})
}

// FuzzParseOrigin checks that an accepted Origin is canonical: a fixed
// point of scheme "://" canonical host, nothing else.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://evil.test", "https://App.Example.com:443", "http://app.example.com:80", "null",
		"https://app.example.com/", "https://user@app.example.com", "https://*.corp.test", "wss://app.example.com",
		"https://[::1]:8443", "HTTPS://APP.EXAMPLE.COM", "https://app.example.com:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := parseOrigin(in)
		if !ok {
			return
		}
		if again, ok := parseOrigin(got); !ok || again != got {
			t.Fatalf("%q → %q → %q", in, got, again)
		}
		scheme, host, _ := strings.Cut(got, "://")
		if scheme != "http" && scheme != "https" || host != CanonicalHost(host, scheme == "https") || len(got) > maxOriginBytes+1 {
			t.Fatalf("%q → %q", in, got)
		}
	})
}
