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
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// rawUpstream is a TCP server whose handler speaks HTTP by hand, to send
// the responses a well-behaved httptest server never sends.
type rawUpstream struct {
	l        net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

// startRaw serves every connection with handle until the test ends.
func startRaw(t *testing.T, handle func(n int64, conn net.Conn, br *bufio.Reader)) *rawUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{l: l}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			n := u.accepted.Add(1)
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer conn.Close()
				handle(n, conn, bufio.NewReader(conn))
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return u
}

func (u *rawUpstream) url() string { return "http://" + u.l.Addr().String() }

// readRequest reads one request head (and no body) or reports false.
func readRequest(br *bufio.Reader) (*http.Request, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, false
	}
	io.Copy(io.Discard, req.Body)
	return req, true
}

// keepAlive answers every request on a connection with resp(request).
func keepAlive(resp func(r *http.Request) string) func(int64, net.Conn, *bufio.Reader) {
	return func(_ int64, conn net.Conn, br *bufio.Reader) {
		for {
			r, ok := readRequest(br)
			if !ok {
				return
			}
			if _, err := io.WriteString(conn, resp(r)); err != nil {
				return
			}
		}
	}
}

func testLean(t testing.TB) *leanTransport {
	fb := &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute, DisableCompression: true}
	d := &net.Dialer{Timeout: 5 * time.Second}
	lt := newLeanTransport(fb, d.DialContext)
	t.Cleanup(lt.CloseIdleConnections)
	return lt
}

// get does a request through rt and returns status, body and trailer.
func get(t *testing.T, rt http.RoundTripper, method, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, string(body)
}

func TestLeanTransportReusesConnection(t *testing.T) {
	var conns sync.Map
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Store(r.RemoteAddr, true)
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer up.Close()
	lt := testLean(t)
	for i := range 10 {
		resp, body := get(t, lt, "GET", fmt.Sprintf("%s/%d", up.URL, i))
		if resp.StatusCode != 200 || body != fmt.Sprintf("hello /%d", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	n := 0
	conns.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("10 sequential requests used %d connections, want 1", n)
	}
	if lt.idleCount() != 1 {
		t.Errorf("idle connections %d, want 1", lt.idleCount())
	}
}

func TestLeanTransportResponses(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	tests := []struct {
		name     string
		method   string
		response string
		wantBody string
		reused   bool // the connection serves the next request
		check    func(t *testing.T, resp *http.Response)
	}{
		{name: "content-length", method: "GET", response: ok, wantBody: "ok", reused: true},
		{name: "connection close", method: "GET", response: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", wantBody: "ok"},
		{name: "http/1.0 until EOF", method: "GET", response: "HTTP/1.0 200 OK\r\n\r\nuntil eof", wantBody: "until eof"},
		{name: "chunked with trailers", method: "GET", wantBody: "hello, world", reused: true,
			response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 42\r\n\r\n",
			check: func(t *testing.T, resp *http.Response) {
				if got := resp.Trailer.Get("X-Sum"); got != "42" {
					t.Errorf("trailer X-Sum = %q, want 42", got)
				}
			}},
		{name: "HEAD with content-length", method: "HEAD", response: "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n", reused: true,
			check: func(t *testing.T, resp *http.Response) {
				if resp.ContentLength != 1024 {
					t.Errorf("HEAD Content-Length %d, want 1024", resp.ContentLength)
				}
			}},
		{name: "204", method: "GET", response: "HTTP/1.1 204 No Content\r\n\r\n", reused: true},
		{name: "304", method: "GET", response: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", reused: true},
		{name: "1xx then 200", method: "GET", response: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n" + ok, wantBody: "ok", reused: true},
		{name: "stray bytes after the body", method: "GET", response: ok + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale", wantBody: "ok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			second := keepAlive(func(*http.Request) string {
				return "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"
			})
			up := startRaw(t, func(n int64, conn net.Conn, br *bufio.Reader) {
				if n == 1 {
					if _, ok := readRequest(br); !ok {
						return
					}
					io.WriteString(conn, tc.response)
					if strings.Contains(tc.response, "HTTP/1.0") {
						return // close = end of body
					}
				}
				// Every later request gets a marker body.
				second(n, conn, br)
			})
			lt := testLean(t)
			resp, body := get(t, lt, tc.method, up.url()+"/first")
			if body != tc.wantBody {
				t.Fatalf("body %q, want %q", body, tc.wantBody)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
			resp, body = get(t, lt, "GET", up.url()+"/second")
			if resp.StatusCode != 200 || body != "second" {
				t.Fatalf("next request: %d %q (a response of the first exchange leaked into it?)", resp.StatusCode, body)
			}
			if want := map[bool]int64{true: 1, false: 2}[tc.reused]; up.accepted.Load() != want {
				t.Errorf("connections %d, want %d", up.accepted.Load(), want)
			}
		})
	}
}

func TestLeanTransportPassesInformational(t *testing.T) {
	up := startRaw(t, keepAlive(func(*http.Request) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	lt := testLean(t)
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprint(code, " ", h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", up.url(), nil)
	resp, err := lt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got) != 1 || got[0] != "103 </s.css>" {
		t.Fatalf("status %d, 1xx seen %q", resp.StatusCode, got)
	}
}

func TestLeanTransportRejectsUnaskedSwitch(t *testing.T) {
	up := startRaw(t, keepAlive(func(*http.Request) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	}))
	req, _ := http.NewRequest("GET", up.url(), nil)
	if _, err := testLean(t).RoundTrip(req); !errors.Is(err, errUnexpectedSwitch) {
		t.Fatalf("101 without an upgrade request: %v", err)
	}
}

// TestLeanTransportRetriesStaleConnection: the upstream closes a keep-alive
// connection after each response without saying so. The next idempotent
// request fails on the reused connection before any response byte and is
// sent once more on a fresh one; a body-less POST is not retried, but the
// closed idle connection is noticed before it is used.
func TestLeanTransportRetriesStaleConnection(t *testing.T) {
	t.Run("closed after the response", func(t *testing.T) {
		up := startRaw(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
			if _, ok := readRequest(br); ok {
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		lt := testLean(t)
		for i := range 3 {
			if resp, body := get(t, lt, "GET", up.url()); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
			}
		}
		time.Sleep(50 * time.Millisecond) // let the FIN arrive
		if resp, body := get(t, lt, "POST", up.url()); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("POST on a connection the upstream closed while idle: %d %q", resp.StatusCode, body)
		}
		if n := up.accepted.Load(); n != 4 {
			t.Errorf("connections %d, want 4", n)
		}
	})
	t.Run("closed on the next request", func(t *testing.T) {
		// Each connection answers its first request and drops the second
		// unanswered (as a server whose keep-alive timer fired just then).
		up := startRaw(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
			if _, ok := readRequest(br); ok {
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			readRequest(br)
		})
		lt := testLean(t)
		get(t, lt, "GET", up.url())
		if resp, body := get(t, lt, "GET", up.url()); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("retried GET: %d %q", resp.StatusCode, body)
		}
		if n := up.accepted.Load(); n != 2 {
			t.Fatalf("connections %d, want 2 (one retry)", n)
		}
		req, _ := http.NewRequest("POST", up.url(), nil)
		if _, err := lt.RoundTrip(req); err == nil {
			t.Fatal("POST on a connection dropped mid-request succeeded: it was retried")
		}
		if n := up.accepted.Load(); n != 2 {
			t.Errorf("connections %d after the POST, want 2 (no retry)", n)
		}
	})
	t.Run("fresh connection is not retried", func(t *testing.T) {
		up := startRaw(t, func(_ int64, conn net.Conn, br *bufio.Reader) { readRequest(br) })
		req, _ := http.NewRequest("GET", up.url(), nil)
		if _, err := testLean(t).RoundTrip(req); err == nil {
			t.Fatal("no error from an upstream that closed without answering")
		}
		if n := up.accepted.Load(); n != 1 {
			t.Errorf("connections %d, want 1", n)
		}
	})
}

func TestLeanTransportUnreadBodyClosesConnection(t *testing.T) {
	body := strings.Repeat("x", 64<<10)
	up := startRaw(t, keepAlive(func(*http.Request) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}))
	lt := testLean(t)
	for _, read := range []int{0, 100} {
		req, _ := http.NewRequest("GET", up.url(), nil)
		resp, err := lt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.CopyN(io.Discard, resp.Body, int64(read))
		resp.Body.Close()
		if lt.idleCount() != 0 {
			t.Fatalf("connection with %d unread body bytes went back to the pool", len(body)-read)
		}
	}
	if resp, got := get(t, lt, "GET", up.url()); resp.StatusCode != 200 || got != body {
		t.Fatalf("next request: %d, %d bytes", resp.StatusCode, len(got))
	}
	if n := up.accepted.Load(); n != 3 {
		t.Errorf("connections %d, want 3", n)
	}
}

func TestLeanTransportCancelMidBody(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := startRaw(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
		readRequest(br)
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
		<-release
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", up.url(), nil)
	lt := testLean(t)
	resp, err := lt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part" {
		t.Fatalf("first bytes: %q %v", buf, err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v to unblock the read", d)
	}
	resp.Body.Close()
	if lt.idleCount() != 0 {
		t.Error("cancelled connection went back to the pool")
	}
}

func TestLeanTransportTimeouts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := startRaw(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
		readRequest(br)
		<-release
	})
	t.Run("response header timeout", func(t *testing.T) {
		lt := testLean(t)
		lt.responseHeaderTimeout = 100 * time.Millisecond
		req, _ := http.NewRequest("GET", up.url(), nil)
		start := time.Now()
		_, err := lt.RoundTrip(req)
		if !IsTimeout(err) {
			t.Fatalf("err %v, want a timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("timeout after %v", d)
		}
		if n := up.accepted.Load(); n != 1 {
			t.Errorf("connections %d, want 1 (a timeout is not retried)", n)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", up.url(), nil)
		if _, err := testLean(t).RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want context.DeadlineExceeded", err)
		}
	})
}

// TestLeanTransportStrayResponse (issue 12.1): a response crossed from one
// user to another. The upstream answers alice, then 30 ms later writes a
// second, unsolicited response on the same keep-alive connection; bob's
// request 100 ms later — within the second in which the old transport
// skipped its check — must get bob's answer on another connection, for
// an idempotent and a non-idempotent method alike.
func TestLeanTransportStrayResponse(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			up := testenv.StartHostileUpstream(t,
				[]testenv.Step{testenv.ReadRequest(), testenv.Respond("for {{path}}"), testenv.Sleep(30 * time.Millisecond),
					testenv.Write(testenv.HostileResponse(200, "alice's private data")), testenv.ReadRequest(), testenv.Respond("for {{path}}")},
				[]testenv.Step{testenv.KeepAlive("for {{path}}")},
			)
			lt := testLean(t)
			var unsolicited atomic.Int64
			lt.onUnsolicited = func() { unsolicited.Add(1) }
			if _, body := get(t, lt, "GET", up.URL+"/alice"); body != "for /alice" {
				t.Fatalf("alice got %q", body)
			}
			time.Sleep(100 * time.Millisecond)
			if _, body := get(t, lt, method, up.URL+"/bob"); body != "for /bob" {
				t.Fatalf("bob got %q", body)
			}
			if n := up.Conns(); n != 2 {
				t.Errorf("connections %d, want 2 (the one with the stray response closed)", n)
			}
			if n := unsolicited.Load(); n != 1 {
				t.Errorf("unsolicited responses reported %d, want 1", n)
			}
			if got := strings.Join(up.Targets(), " "); got != "/alice /bob" {
				t.Errorf("requests seen %q: bob's went to the connection with the stray response", got)
			}
		})
	}
}

// opaqueConn hides the connection's syscall.Conn, so it cannot be peeked.
type opaqueConn struct{ net.Conn }

// TestLeanTransportNeverReusesUncheckedConnection (issue 12.1): a
// connection whose idle state cannot be checked is closed after its
// exchange instead of pooled.
func TestLeanTransportNeverReusesUncheckedConnection(t *testing.T) {
	up := startRaw(t, keepAlive(func(*http.Request) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" }))
	lt := testLean(t)
	d := &net.Dialer{Timeout: 5 * time.Second}
	lt.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return opaqueConn{c}, nil
	}
	for range 3 {
		if resp, body := get(t, lt, "GET", up.url()); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if lt.idleCount() != 0 {
			t.Fatal("an uncheckable connection went back to the pool")
		}
	}
	if n := up.accepted.Load(); n != 3 {
		t.Errorf("connections %d, want 3", n)
	}
}
