package proxy

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// pathSeeds are the attack examples of issue 12.2 and their relatives.
var pathSeeds = []string{
	"/", "/admin", "/pub/../admin", "/%2e%2e/x", "//a//b", "/%61dmin", "/a%2Fb", "/./x/.", "/%c0%ae%c0%ae/", "/a;b/../c",
	"/pub/..;/admin/x", "/pub/%2e%2e;/admin/x", "/pub/..%3B/admin/x", "/admin;x", "/admin;x/y", "/admin%3Bx",
	"/pub/.;/admin", "/;x/admin", "/app/;jsessionid=1", "/cars;color=red/x", "/admin%3Bx{", "/api%2Fx{", "/a/;x/",
	"/a b", "/a;x=%2e%2e/b", "/a/.;/b", "/a/%2e/b", "/a/.%00/b",
}

// servletPath is a servlet container's reading of a raw request path,
// the oracle for issue 12.2. Tomcat and Spring cut ";parameters" from
// each raw segment before percent-decoding (decodeFirst false); other
// stacks decode first (true). Then "." and ".." segments are resolved and
// empty ones collapsed. ok is false where the container refuses the path.
func servletPath(raw string, decodeFirst bool) (string, bool) {
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

// agreesWithServlet checks that the path ztproxy judges (match) is the
// one a servlet container acts on, whichever way it strips parameters:
// for the raw path (what a forward-auth front proxy passes upstream) and
// for the forward path as the proxy sends it.
func agreesWithServlet(t *testing.T, raw string, rp requestPath) {
	t.Helper()
	sent := (&url.URL{Path: rp.forward}).EscapedPath()
	for _, in := range []string{raw, sent} {
		for _, decodeFirst := range []bool{false, true} {
			if got, ok := servletPath(in, decodeFirst); !ok || got != rp.match {
				t.Fatalf("%q: ztproxy judges %q, a servlet container (decodeFirst=%v) reads %q as %q (ok=%v)", raw, rp.match, decodeFirst, in, got, ok)
			}
		}
	}
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
		rp, err := parseRequestPath(in)
		if err != nil {
			return
		}
		got := rp.match
		if !strings.HasPrefix(got, "/") || !strings.HasPrefix(rp.forward, "/") {
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
		for i := 0; i < len(rp.forward); i++ {
			if c := rp.forward[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("%q → %q: control byte", in, rp.forward)
			}
		}
		if rp.params != (rp.forward != got) && !strings.Contains(rp.forward, ";") {
			t.Fatalf("%q → %+v: params flag disagrees with the forward path", in, rp)
		}
		if again, err := parseRequestPath((&url.URL{Path: got}).EscapedPath()); err != nil || again.match != got || again.params {
			t.Fatalf("not a fixed point: %q → %q → %+v (%v)", in, got, again, err)
		}
		sent := (&url.URL{Path: rp.forward}).EscapedPath()
		if again, err := parseRequestPath(sent); err != nil || again != rp {
			t.Fatalf("the upstream's path reads differently: %q → %+v, sent %q → %+v (%v)", in, rp, sent, again, err)
		}
		agreesWithServlet(t, in, rp)
	})
}

// rawURIPath is the path part of a request URI as a front proxy passes
// it upstream.
func rawURIPath(uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		return uri[:i]
	}
	return uri
}

// FuzzOriginalRequestPath runs the servlet differential on the path
// inputs of forward-auth (X-Original-URL, X-Forwarded-Uri) and ext_authz
// (attributes.request.http.path): what is judged is what the upstream
// behind the front proxy receives, byte for byte.
func FuzzOriginalRequestPath(f *testing.F) {
	for _, s := range pathSeeds {
		f.Add(s)
		f.Add(s + "?q=1")
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if !strings.HasPrefix(uri, "/") {
			return // every input requires an absolute path; "x" would join the host
		}
		judge := func(u *url.URL, sent string) {
			rp, err := parseRequestPath(rawPath(u))
			if err != nil {
				return
			}
			agreesWithServlet(t, rawURIPath(sent), rp)
		}
		// A header value arrives without surrounding whitespace (RFC 9110
		// §5.5), so a front proxy cannot have meant it.
		headerValue := strings.Trim(uri, " \t")
		for _, h := range []http.Header{
			{"X-Original-Url": {"https://app.example.com" + uri}, "X-Original-Method": {"GET"}},
			{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}, "X-Forwarded-Uri": {uri}},
		} {
			if orig, err := parseOriginal(h); err == nil {
				judge(orig.url, headerValue)
			}
		}
		if _, r, err := extAuthzRequest(context.Background(), envoyCheck("GET", "app.example.com", uri, nil, "").GetAttributes()); err == nil {
			judge(r.URL, uri)
		}
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
		got := canonicalHost(in, tls)
		if got == "" {
			return
		}
		if again := canonicalHost(got, tls); again != got {
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
		if scheme != "http" && scheme != "https" || host != canonicalHost(host, scheme == "https") || len(got) > maxOriginBytes+1 {
			t.Fatalf("%q → %q", in, got)
		}
	})
}

// FuzzParseOriginal checks the forward-auth inputs: whatever the front
// proxy's headers hold, an accepted original request has a canonical
// method, an http(s) scheme, a usable host and an absolute path.
func FuzzParseOriginal(f *testing.F) {
	f.Add("GET", "https://app.example.com/admin/x", "https", "app.example.com", "/admin/x")
	f.Add("delete", "https://app.example.com/m2/x", "https", "app.example.com", "/m2/x")
	f.Add("DELETE ", "https://app.example.com/pub/..;/admin/x", "http", "APP.example.com:443", "/pub/..%3B/admin/x")
	f.Add("GET", "https://user@app.example.com/#x", "ftp", "app.example.com/x", "admin")
	f.Fuzz(func(t *testing.T, method, rawURL, proto, host, uri string) {
		for _, h := range []http.Header{
			{"X-Original-Url": {rawURL}, "X-Original-Method": {method}},
			{"X-Forwarded-Method": {method}, "X-Forwarded-Proto": {proto}, "X-Forwarded-Host": {host}, "X-Forwarded-Uri": {uri}},
		} {
			orig, err := parseOriginal(h)
			if err != nil {
				continue
			}
			checkOriginal(t, orig)
		}
	})
}

// FuzzExtAuthzRequest is FuzzParseOriginal for Envoy's request
// attributes.
func FuzzExtAuthzRequest(f *testing.F) {
	f.Add("GET", "https", "app.example.com", "/admin/x")
	f.Add("delete", "https", "app.example.com", "/m2/x")
	f.Add("GET", "HTTPS", "app.example.com:443", "/pub/..;/admin/x")
	f.Add("GET", "", "[::1]:8443", "/admin%3Bx")
	f.Fuzz(func(t *testing.T, method, scheme, host, path string) {
		req := envoyCheck(method, host, path, nil, "")
		req.Attributes.Request.Http.Scheme = scheme
		orig, r, err := extAuthzRequest(context.Background(), req.GetAttributes())
		if err != nil {
			return
		}
		checkOriginal(t, orig)
		if r.Method != orig.method || canonicalHost(r.Host, false) == "" {
			t.Fatalf("request %s %q from %+v", r.Method, r.Host, orig)
		}
	})
}

func checkOriginal(t *testing.T, orig originalRequest) {
	t.Helper()
	switch {
	case !isCanonicalMethod(orig.method):
		t.Fatalf("method %q accepted", orig.method)
	case orig.scheme != "http" && orig.scheme != "https":
		t.Fatalf("scheme %q accepted", orig.scheme)
	case canonicalHost(orig.host, orig.scheme == "https") == "":
		t.Fatalf("host %q accepted", orig.host)
	case !strings.HasPrefix(rawPath(orig.url), "/"):
		t.Fatalf("path %q accepted", rawPath(orig.url))
	}
}

// isCanonicalMethod is the test's own statement of issue 12.4's rule.
func isCanonicalMethod(m string) bool {
	return m != "" && len(m) <= 32 && strings.Trim(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") == ""
}
