package decide

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRouteFor: the security key pages look up the route of their return
// URL (attacker-chosen: it comes from the query) to explain what policy
// asks (issue 15.4). Any input must give nil or a route whose host the
// URL really names, never a panic.
func FuzzRouteFor(f *testing.F) {
	e := &Engine{router: newRouter(testRoutes(
		[3]string{"app", "localhost:8443", "/"},
		[3]string{"admin", "localhost:8443", "/admin"},
		[3]string{"wild", "*.corp.example.com", "/"},
	))}
	for _, s := range []string{
		"https://localhost:8443/admin", "https://localhost:8443/admin/x?y=1", "https://localhost:8443/.ztp/whoami",
		"https://x.corp.example.com/", "https://evil.example/admin", "//localhost:8443/admin", "/admin",
		"https://localhost:8443/admin/..%2f", "https://LOCALHOST:8443/%61dmin", "https://[::1]:8443/", "javascript:alert(1)",
		"https://localhost:8443@evil.example/admin", "https://localhost:8443/admin;x=1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rt := e.RouteFor(raw)
		if rt == nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("route %s for an unparsable URL %q", rt.Name, raw)
		}
		host := CanonicalHost(u.Host, u.Scheme == "https")
		if host != rt.Host && !(strings.HasPrefix(rt.Host, "*.") && strings.HasSuffix(host, rt.Host[1:])) {
			t.Fatalf("%q (host %q) gave route %s of host %s", raw, host, rt.Name, rt.Host)
		}
	})
}
