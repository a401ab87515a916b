package portal

import (
	"net/url"
	"testing"
)

// TestRouteURL: issue 15.1, whoami's route links kept the scheme but
// dropped the external URL's port (https://localhost/admin for a demo on
// :8443), so clicking them reached nothing.
func TestRouteURL(t *testing.T) {
	for _, tc := range []struct {
		external, host, prefix, want string
	}{
		{"https://localhost:8443", "localhost", "/admin", "https://localhost:8443/admin"},
		{"https://access.example.com", "app.example.com", "/", "https://app.example.com/"},
		{"https://access.example.com:8443", "app.example.com", "/x", "https://app.example.com:8443/x"},
		{"https://localhost:8443", "localhost:9443", "/", "https://localhost:9443/"},
		{"https://[::1]:8443", "[::1]", "/", "https://[::1]:8443/"},
		{"https://[::1]:8443", "[::1]:9443", "/", "https://[::1]:9443/"},
		{"http://127.0.0.1:8080", "127.0.0.1", "/api", "http://127.0.0.1:8080/api"},
		{"https://localhost:8443", "*.example.com", "/", ""},
	} {
		ext, err := url.Parse(tc.external)
		if err != nil {
			t.Fatal(err)
		}
		if got := routeURL(ext, tc.host, tc.prefix); got != tc.want {
			t.Errorf("routeURL(%s, %s, %s) = %q, want %q", tc.external, tc.host, tc.prefix, got, tc.want)
		}
	}
}
