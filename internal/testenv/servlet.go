package testenv

import (
	"net/url"
	"strings"
	"testing"
)

// PathAttackSeeds are the attack examples of issue 12.2 and their
// relatives: the seed corpus of the request path fuzzers.
var PathAttackSeeds = []string{
	"/", "/admin", "/pub/../admin", "/%2e%2e/x", "//a//b", "/%61dmin", "/a%2Fb", "/./x/.", "/%c0%ae%c0%ae/", "/a;b/../c",
	"/pub/..;/admin/x", "/pub/%2e%2e;/admin/x", "/pub/..%3B/admin/x", "/admin;x", "/admin;x/y", "/admin%3Bx",
	"/pub/.;/admin", "/;x/admin", "/app/;jsessionid=1", "/cars;color=red/x", "/admin%3Bx{", "/api%2Fx{", "/a/;x/",
	"/a b", "/a;x=%2e%2e/b", "/a/.;/b", "/a/%2e/b", "/a/.%00/b",
}

// ServletPath is a servlet container's reading of a raw request path,
// the oracle for issue 12.2. It is not a real component: no servlet
// container runs in the tests (there is no JVM among the test
// components), so this is the reading Tomcat and Spring document,
// written out. Tomcat and Spring cut ";parameters" from
// each raw segment before percent-decoding (decodeFirst false); other
// stacks decode first (true). Then "." and ".." segments are resolved and
// empty ones collapsed. ok is false where the container refuses the path.
func ServletPath(raw string, decodeFirst bool) (string, bool) {
	if raw == "" {
		return "/", true // an empty origin-form path is "/"
	}
	if !strings.HasPrefix(raw, "/") {
		return "", false
	}
	var out []string
	dir := false
	for _, seg := range strings.Split(raw[1:], "/") {
		if !decodeFirst {
			seg, _, _ = strings.Cut(seg, ";")
		}
		seg, err := url.PathUnescape(seg)
		if err != nil {
			return "", false
		}
		if decodeFirst {
			seg, _, _ = strings.Cut(seg, ";")
		}
		switch seg {
		case "", ".":
			dir = true
			continue
		case "..":
			if len(out) == 0 {
				return "", false
			}
			out, dir = out[:len(out)-1], true
			continue
		}
		out, dir = append(out, seg), false
	}
	p := "/" + strings.Join(out, "/")
	if dir && len(out) > 0 {
		p += "/"
	}
	return p, true
}

// AgreesWithServlet checks that the path ztproxy judges (match) is the
// one a servlet container acts on, whichever way it strips parameters:
// for the raw path (what a forward-auth front proxy passes upstream) and
// for the forward path as the proxy sends it.
func AgreesWithServlet(t testing.TB, raw, match, forward string) {
	t.Helper()
	sent := (&url.URL{Path: forward}).EscapedPath()
	for _, in := range []string{raw, sent} {
		for _, decodeFirst := range []bool{false, true} {
			if got, ok := ServletPath(in, decodeFirst); !ok || got != match {
				t.Fatalf("%q: ztproxy judges %q, a servlet container (decodeFirst=%v) reads %q as %q (ok=%v)", raw, match, decodeFirst, in, got, ok)
			}
		}
	}
}
