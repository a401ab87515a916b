package decide

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestRequestIDFromTrustedProxy: issue 19, X-Request-Id was always newly
// generated, even behind a trusted load balancer that had set one. It is
// now taken from trusted proxies when it is a plain bounded token; a
// client's own, or anything that is not such a token, gets a fresh id (a
// request id reaches logs, headers and error pages).
func TestRequestIDFromTrustedProxy(t *testing.T) {
	e := &Engine{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	tests := []struct {
		name, peer, id string
		keep           bool
	}{
		{"trusted uuid", "10.1.2.3:4000", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"trusted aws trace id parts", "10.1.2.3:4000", "Root=1-67891233-abcdef012345678912345678", false},
		{"trusted dotted", "10.1.2.3:4000", "lb.req_42", true},
		{"untrusted client", "203.0.113.9:4000", "0f8fad5b-d9cb-469f-a165-70867728950e", false},
		{"trusted too long", "10.1.2.3:4000", strings.Repeat("a", 65), false},
		{"trusted 64", "10.1.2.3:4000", strings.Repeat("a", 64), true},
		{"trusted log injection", "10.1.2.3:4000", "abc\ninjected", false},
		{"trusted html", "10.1.2.3:4000", "<script>", false},
		{"trusted space", "10.1.2.3:4000", "a b", false},
		{"trusted empty", "10.1.2.3:4000", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.RemoteAddr = tt.peer
			if tt.id != "" {
				r.Header["X-Request-Id"] = []string{tt.id}
			}
			var x Exchange
			if err := e.Begin(&x, r, time.Now()); err != nil {
				t.Fatal(err)
			}
			got := x.RC.RequestID
			if tt.keep && got != tt.id {
				t.Errorf("request id %q, want the proxy's %q", got, tt.id)
			}
			if !tt.keep && (got == tt.id || len(got) != 16 || ValidRequestID(got) != got) {
				t.Errorf("request id %q, want a fresh 16-hex-digit id", got)
			}
		})
	}
}

// FuzzValidRequestID: whatever a trusted proxy sends, a kept request id
// is 1..64 bytes of [A-Za-z0-9._-].
func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"", "abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "a\r\nb", strings.Repeat("z", 80), "ü", "a.b_c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ValidRequestID(s)
		if got == "" {
			return
		}
		if got != s || len(got) > maxRequestIDLength {
			t.Fatalf("ValidRequestID(%q) = %q", s, got)
		}
		for _, c := range []byte(got) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
				t.Fatalf("kept byte %q in %q", c, got)
			}
		}
	})
}
