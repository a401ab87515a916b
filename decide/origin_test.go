package decide

import (
	"net/http/httptest"
	"testing"

	"ztproxy/internal/testenv"
)

// Issue 12.6 for client certificates, the other ambient credential: a
// foreign Origin is refused, a service without Origin is not.
func TestWebSocketOriginWithClientCertificate(t *testing.T) {
	x := &Exchange{Scheme: "https", ambient: certCredential, Route: &Route{}}
	for origin, want := range map[string]error{"https://evil.test": errOrigin, "": nil, "https://ws.example.com": nil} {
		r := httptest.NewRequest("GET", "https://ws.example.com/dev/x", nil)
		for k, v := range testenv.WebSocketHeaders(origin, nil) {
			r.Header[k] = v
		}
		if got := checkWebSocketOrigin(r, x); got != want {
			t.Errorf("origin %q: %v, want %v", origin, got, want)
		}
	}
}
