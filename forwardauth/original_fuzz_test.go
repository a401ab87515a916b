package forwardauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"ztproxy/decide"
	"ztproxy/internal/testenv"
)

// pathSeeds are the attack examples of issue 12.2 and their relatives.
var pathSeeds = testenv.PathAttackSeeds

// agreesWithServlet checks the judged path against a servlet container's
// reading (testenv.AgreesWithServlet).
func agreesWithServlet(t *testing.T, raw string, rp decide.RequestPath) {
	t.Helper()
	testenv.AgreesWithServlet(t, raw, rp.Match, rp.Forward)
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
			rp, err := decide.ParseRequestPath(decide.RawPath(u))
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
		if r.Method != orig.method || decide.CanonicalHost(r.Host, false) == "" {
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
	case decide.CanonicalHost(orig.host, orig.scheme == "https") == "":
		t.Fatalf("host %q accepted", orig.host)
	case !strings.HasPrefix(decide.RawPath(orig.url), "/"):
		t.Fatalf("path %q accepted", decide.RawPath(orig.url))
	}
}

// isCanonicalMethod is the test's own statement of issue 12.4's rule.
func isCanonicalMethod(m string) bool {
	return m != "" && len(m) <= 32 && strings.Trim(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") == ""
}
