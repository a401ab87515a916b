package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHostileIdP checks the hostile server does what its controls say.
func TestHostileIdP(t *testing.T) {
	k1, k2 := NewRSASigningKey(t, "k1", 0), NewECSigningKey(t, "k2")
	h := StartHostileIdP(t, k1, k2)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(url string) (*http.Response, string) {
		t.Helper()
		resp, err := noFollow.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	_, body := fetch(h.DiscoveryURL())
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Issuer != h.Issuer || doc.JWKSURI != h.JWKSURL() {
		t.Fatalf("discovery: %s (%v)", body, err)
	}
	var set struct{ Keys []map[string]string }
	_, body = fetch(h.JWKSURL())
	if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) != 2 || set.Keys[0]["kid"] != "k1" || set.Keys[1]["crv"] != "P-256" {
		t.Fatalf("JWKS: %s (%v)", body, err)
	}
	h.Publish(k2)
	h.SetJWKSCacheControl("max-age=7")
	resp, body := fetch(h.JWKSURL())
	if !strings.Contains(body, `"k2"`) || strings.Contains(body, `"k1"`) || resp.Header.Get("Cache-Control") != "max-age=7" {
		t.Fatalf("after Publish(k2): %s %v", body, resp.Header)
	}
	h.RedirectJWKS("http://127.0.0.1:1/elsewhere")
	if resp, _ := fetch(h.JWKSURL()); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.1:1/elsewhere" {
		t.Fatalf("redirect: %d %v", resp.StatusCode, resp.Header)
	}
	h.RedirectJWKS("")
	h.SetJWKSPadding(3 << 20)
	_, body = fetch(h.JWKSURL())
	if len(body) < 3<<20 || json.Unmarshal([]byte(body), &set) != nil || len(set.Keys) != 1 {
		t.Fatalf("padded JWKS: %d bytes, not a valid key set", len(body))
	}
	if n := h.JWKSFetches(); n != 4 {
		t.Errorf("JWKS fetches counted %d, want 4", n)
	}
	if tok := Token(k1, map[string]any{"sub": "x"}); strings.Count(tok, ".") != 2 {
		t.Errorf("token %q", tok)
	}
}
