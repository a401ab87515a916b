package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLeanTransportConcurrentNeverMixesResponses sends 50 × 40 requests
// with ids over a small pool; each must get its own response (run with
// -race).
func TestLeanTransportConcurrentNeverMixesResponses(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Req-Id")
		if id[len(id)-1] == '7' {
			w.Header().Set("Connection", "close")
		}
		if id[len(id)-1] == '3' { // chunked
			w.Write([]byte("id="))
			w.(http.Flusher).Flush()
			w.Write([]byte(id))
			return
		}
		io.WriteString(w, "id="+id)
	}))
	defer up.Close()
	lt := testLean(t)
	var wg sync.WaitGroup
	var bad atomic.Int64
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id := fmt.Sprintf("%d-%d", g, i)
				req, _ := http.NewRequest("GET", up.URL+"/"+id, nil)
				req.Header.Set("X-Req-Id", id)
				resp, err := lt.RoundTrip(req)
				if err != nil {
					t.Error(err)
					bad.Add(1)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(body) != "id="+id {
					t.Errorf("request %s got %q (%v)", id, body, err)
					bad.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := lt.idleCount(); n > lt.maxIdlePerHost {
		t.Errorf("%d idle connections, max %d", n, lt.maxIdlePerHost)
	}
}

func TestLeanTransportIdlePool(t *testing.T) {
	up := startRaw(t, keepAlive(func(*http.Request) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" }))
	t.Run("max idle per host", func(t *testing.T) {
		lt := testLean(t)
		lt.maxIdlePerHost = 2
		var resps []*http.Response
		for range 5 { // five connections at once
			req, _ := http.NewRequest("GET", up.url(), nil)
			resp, err := lt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resps = append(resps, resp)
		}
		for _, r := range resps {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		if n := lt.idleCount(); n != 2 {
			t.Errorf("idle %d, want 2", n)
		}
		lt.CloseIdleConnections()
		if n := lt.idleCount(); n != 0 {
			t.Errorf("idle %d after CloseIdleConnections", n)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		lt := testLean(t)
		lt.idleTimeout = 50 * time.Millisecond
		get(t, lt, "GET", up.url())
		if lt.idleCount() != 1 {
			t.Fatal("no idle connection")
		}
		deadline := time.Now().Add(2 * time.Second)
		for lt.idleCount() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if lt.idleCount() != 0 {
			t.Error("idle connection outlived the idle timeout")
		}
	})
}

// TestLeanTransportFallback: requests the lean path does not handle go to
// the standard transport, and still work.
func TestLeanTransportFallback(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	defer up.Close()
	for _, tc := range []struct {
		req    func() *http.Request
		handle bool
	}{
		{func() *http.Request { r, _ := http.NewRequest("GET", up.URL, nil); return r }, true},
		{func() *http.Request { r, _ := http.NewRequest("POST", up.URL, strings.NewReader("body")); return r }, false},
		{func() *http.Request {
			r, _ := http.NewRequest("GET", up.URL, nil)
			r.Header.Set("Upgrade", "websocket")
			return r
		}, false},
		{func() *http.Request {
			r, _ := http.NewRequest("GET", strings.Replace(up.URL, "http:", "https:", 1), nil)
			return r
		}, false},
	} {
		if got := leanEligible(tc.req()); got != tc.handle {
			t.Errorf("leanEligible(%s %s upgrade=%q) = %v", tc.req().Method, tc.req().URL, tc.req().Header.Get("Upgrade"), got)
		}
	}
	lt := testLean(t)
	req, _ := http.NewRequest("POST", up.URL, strings.NewReader("body"))
	resp, err := lt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST body" {
		t.Fatalf("fallback POST: %q", b)
	}
	if lt.idleCount() != 0 {
		t.Error("the fallback's connection ended up in the lean pool")
	}
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{"a.example": "a.example:80", "a.example:8080": "a.example:8080", "[::1]": "[::1]:80", "[::1]:81": "[::1]:81", "127.0.0.1": "127.0.0.1:80"} {
		if got := hostPort(in); got != want {
			t.Errorf("hostPort(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLeanTransportBehindReverseProxy: through httputil.ReverseProxy the
// lean path still relays 103 Early Hints and trailers to the client.
func TestLeanTransportBehindReverseProxy(t *testing.T) {
	up := startRaw(t, keepAlive(func(*http.Request) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 7\r\n\r\n"
	}))
	u := mustURL(t, up.url())
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, Transport: testLean(t)}
	front := httptest.NewServer(rp)
	defer front.Close()
	var hints []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { hints = append(hints, code); return nil }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", front.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" || resp.Trailer.Get("X-Sum") != "7" || len(hints) != 1 || hints[0] != 103 {
		t.Fatalf("body %q, trailer %q, 1xx %v", body, resp.Trailer.Get("X-Sum"), hints)
	}
}

// TestForwarderUsesLeanTransportForPlainHTTP: http:// upstreams get the
// lean transport unless the route chose upstream_transport: standard (the
// escape hatch of issue 12.1); https:// upstreams always net/http's.
func TestForwarderUsesLeanTransportForPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		scheme string
		choice Mode
		lean   bool
	}{
		{"http", "", true}, {"http", Lean, true}, {"http", Standard, false},
		{"https", "", false}, {"https", Lean, false},
	} {
		transport, err := New(Config{URL: mustURL(t, tc.scheme+"://up.example"), ResponseHeaderTimeout: time.Second, Mode: tc.choice})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := transport.(*leanTransport); ok != tc.lean {
			t.Errorf("%s upstream, transport %q: lean %v, want %v", tc.scheme, tc.choice, ok, tc.lean)
		}
	}
	if _, err := New(Config{URL: mustURL(t, "http://up.example"), Mode: "fast"}); err == nil {
		t.Error("an unknown upstream transport was accepted")
	}
}

// TestLeanTransportBoundsResponseHead: an upstream that never ends its
// headers gets an error, not an unbounded buffer.
func TestLeanTransportBoundsResponseHead(t *testing.T) {
	up := startRaw(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
		readRequest(br)
		io.WriteString(conn, "HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
		for {
			if _, err := io.WriteString(conn, line); err != nil {
				return
			}
		}
	})
	lt := testLean(t)
	lt.maxResponseHeaderBytes = 64 << 10
	req, _ := http.NewRequest("GET", up.url(), nil)
	if _, err := lt.RoundTrip(req); !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("endless headers: %v, want errHeaderTooLarge", err)
	}
}

// TestLeanTransportZeroSettings: zero values mean what they mean for
// http.Transport (no idle timeout, 2 idle connections per host).
func TestLeanTransportZeroSettings(t *testing.T) {
	up := startRaw(t, keepAlive(func(*http.Request) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" }))
	d := &net.Dialer{}
	lt := newLeanTransport(&http.Transport{}, d.DialContext)
	defer lt.CloseIdleConnections()
	if lt.maxIdlePerHost != http.DefaultMaxIdleConnsPerHost || lt.maxResponseHeaderBytes <= 0 {
		t.Fatalf("defaults: %d idle, %d header bytes", lt.maxIdlePerHost, lt.maxResponseHeaderBytes)
	}
	get(t, lt, "GET", up.url())
	time.Sleep(20 * time.Millisecond)
	get(t, lt, "GET", up.url())
	if n := up.accepted.Load(); n != 1 || lt.idleCount() != 1 {
		t.Fatalf("with no idle timeout: %d connections, %d idle; want 1, 1", n, lt.idleCount())
	}
}
