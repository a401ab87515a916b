package authn

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestIdPHTTPClient: the one client every IdP call uses.
// Issue 12.3: IdP discovery and JWKS fetches followed redirects and read
// unbounded bodies.
func TestIdPHTTPClient(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/exact", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("a", MaxIdPResponseBytes))
	})
	mux.HandleFunc("/declared", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("a", MaxIdPResponseBytes+1))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 17 {
			io.WriteString(w, strings.Repeat("a", 64<<10))
			w.(http.Flusher).Flush()
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := &http.Client{Timeout: 3 * time.Second}
	c := NewIdPHTTPClient(base)
	read := func(path string) (string, error) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if body, err := read("/ok"); err != nil || body != "ok" {
		t.Fatalf("plain GET: %q %v", body, err)
	}
	if _, err := read("/redirect"); !errors.Is(err, ErrIdPRedirect) {
		t.Errorf("redirect: error %v, want ErrIdPRedirect", err)
	}
	if body, err := read("/exact"); err != nil || len(body) != MaxIdPResponseBytes {
		t.Errorf("body of exactly the limit: %d bytes, %v", len(body), err)
	}
	for _, path := range []string{"/declared", "/chunked"} {
		if _, err := read(path); !errors.Is(err, ErrIdPResponseTooLarge) {
			t.Errorf("%s: error %v, want ErrIdPResponseTooLarge", path, err)
		}
	}
	if _, err := c.Get("http://idp.example.com/jwks"); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("plain http to a non-loopback host: %v, want refused", err)
	}
	if c.Timeout != 3*time.Second || base.CheckRedirect != nil || base.Transport != nil {
		t.Errorf("base client modified or its timeout lost: %+v", base)
	}
	if again := NewIdPHTTPClient(c); again.Transport.(*idpTransport).next != c.Transport.(*idpTransport).next {
		t.Error("hardening a hardened client wrapped its transport twice")
	}
	if NewIdPHTTPClient(nil).Timeout != defaultHTTPTimeout {
		t.Error("nil base: no default timeout")
	}
}
