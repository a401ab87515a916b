package config

import (
	"net/url"
	"testing"

	"ztproxy/authn"
)

// TestReturnHostMatcherExternalPortOnly: issue 12.8, a return URL on a
// wildcard route host was honoured on any port. Names come from the
// external URL and the route hosts; authn adds the external port.
func TestReturnHostMatcherExternalPortOnly(t *testing.T) {
	ext, _ := url.Parse("https://access.example.test:8443")
	f := &File{Routes: []Route{
		{Name: "wild", Host: "*.example.test"},
		{Name: "app", Host: "app.example.org"},
		{Name: "pinned", Host: "pinned.example.org:9443"},
		{Name: "same", Host: "same.example.org:8443"},
		{Name: "v6", Host: "[::1]"},
	}}
	targets := authn.ReturnTargetsFor(ext, returnHostMatcher(f, ext))
	for raw, want := range map[string]bool{
		"https://access.example.test:8443/": true,
		"https://x.example.test:8443/x":     true,
		"https://a.b.example.test:8443/":    true,
		"https://app.example.org:8443/":     true,
		"https://same.example.org:8443/":    true,
		"https://[::1]:8443/":               true,
		"https://x.example.test:4444/x":     false,
		"https://x.example.test/x":          false,
		"https://access.example.test/":      false,
		"https://app.example.org/":          false,
		"https://pinned.example.org:9443/":  false,
		"https://pinned.example.org:8443/":  false,
		"https://example.test:8443/":        false,
		"https://evilexample.test:8443/":    false,
		"http://x.example.test:8443/":       false,
		"https://x.example.test.evil:8443/": false,
		"https://x.example.test:8443@evil/": false,
		"https://x.example.test:08443/":     false,
		"https://x.example.test:8443:8443/": false,
		"https://X.Example.Test.:8443/caps": true,
	} {
		got := authn.SafeReturnTo(raw, targets, "/") == raw
		if got != want {
			t.Errorf("%s accepted %v, want %v", raw, got, want)
		}
	}
}
