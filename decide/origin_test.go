package decide

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Issue 12.6 for client certificates, the other ambient credential: a
// foreign Origin is refused, a service without Origin is not.
func TestWebSocketOriginWithClientCertificate(t *testing.T) {
	x := &Exchange{Scheme: "https", ambient: certCredential, Route: &Route{}}
	for origin, want := range map[string]error{"https://evil.test": errOrigin, "": nil, "https://ws.example.com": nil} {
		r := httptest.NewRequest("GET", "https://ws.example.com/dev/x", nil)
		for k, v := range wsHeaders(origin, nil) {
			r.Header[k] = v
		}
		if got := checkWebSocketOrigin(r, x); got != want {
			t.Errorf("origin %q: %v, want %v", origin, got, want)
		}
	}
}

func wsHeaders(origin string, cookies []*http.Cookie) http.Header {
	h := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	if origin != "" {
		h["Origin"] = []string{origin}
	}
	for _, c := range cookies {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	return h
}
