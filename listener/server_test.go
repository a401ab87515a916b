package listener

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// seen is what the handler saw of one request.
type seen struct {
	path        string
	chunked     bool
	conflicting bool
	tls         bool
	proto       int
}

// recordingServer is a real net/http server whose handler records every
// request and answers chunked ones with Connection: close, as ztproxy's
// front door does.
type recordingServer struct {
	mu   sync.Mutex
	seen []seen
	srv  *http.Server
	addr string
}

func startServer(t testing.TB, wrap func(net.Listener) net.Listener, cfg *tls.Config) *recordingServer {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &recordingServer{addr: inner.Addr().String()}
	rs.srv = &http.Server{
		ConnContext: ConnContext,
		TLSConfig:   cfg,
		ErrorLog:    nil,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rs.mu.Lock()
			rs.seen = append(rs.seen, seen{path: r.URL.Path, chunked: len(r.TransferEncoding) > 0,
				conflicting: ConflictingFraming(r), tls: r.TLS != nil && r.TLS.HandshakeComplete, proto: r.ProtoMajor})
			rs.mu.Unlock()
			if len(r.TransferEncoding) > 0 {
				w.Header().Set("Connection", "close")
			}
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		}),
	}
	l := wrap(inner)
	go rs.srv.Serve(l)
	t.Cleanup(func() { rs.srv.Close() })
	return rs
}

func (rs *recordingServer) requests() []seen {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]seen(nil), rs.seen...)
}

// send writes stream on a new connection and reads until the server
// closes it.
func send(t testing.TB, dial func() (net.Conn, error), stream string) string {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, stream); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(bufio.NewReader(c))
	return string(out)
}

// TestConflictingFramingThroughNetHTTP: issue 12.5 through a real
// net/http server on a plaintext and a TLS listener: the handler learns
// which chunked request also had Content-Length, though net/http deleted
// that header; requests before it in the pipeline are served normally.
func TestConflictingFramingThroughNetHTTP(t *testing.T) {
	cfg := testTLSConfig(t, []string{"h2", "http/1.1"})
	pipeline := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + withBody("hello") +
		"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tt := range []struct {
		name string
		wrap func(net.Listener) net.Listener
		dial func(addr string) func() (net.Conn, error)
	}{
		{"plaintext", Plain, func(addr string) func() (net.Conn, error) {
			return func() (net.Conn, error) { return net.Dial("tcp", addr) }
		}},
		{"tls", func(l net.Listener) net.Listener { return TLS(l, TLSConfig{TLS: cfg}) }, func(addr string) func() (net.Conn, error) {
			return func() (net.Conn, error) {
				return tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs := startServer(t, tt.wrap, cfg)
			out := send(t, tt.dial(rs.addr), pipeline)
			got := rs.requests()
			want := []seen{{path: "/a"}, {path: "/"}, {path: "/c", chunked: true, conflicting: true}}
			for i := range want {
				want[i].tls, want[i].proto = tt.name == "tls", 1
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("handler saw %v, want %v", got, want)
			}
			if n := strings.Count(out, "HTTP/1.1 200"); n != 3 || strings.Contains(out, "smuggled") {
				t.Errorf("%d answers:\n%s", n, out)
			}
			// The same without Content-Length is a plain chunked request.
			rs2 := startServer(t, tt.wrap, cfg)
			send(t, tt.dial(rs2.addr), "POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
			if got := rs2.requests(); len(got) != 1 || !got[0].chunked || got[0].conflicting {
				t.Errorf("plain chunked: %v", got)
			}
		})
	}
}

// TestTLSListenerHTTP2AndHTTP1: HTTP/2 still reaches net/http's HTTP/2
// server, HTTP/1 requests carry their TLS state, a plain HTTP request to
// the TLS port gets net/http's 400, and failed handshakes are reported.
func TestTLSListenerHTTP2AndHTTP1(t *testing.T) {
	cfg := testTLSConfig(t, []string{"h2", "http/1.1"})
	failed := make(chan error, 4)
	rs := startServer(t, func(l net.Listener) net.Listener {
		return TLS(l, TLSConfig{TLS: cfg, OnHandshakeError: func(_ net.Addr, err error) { failed <- err }})
	}, cfg)
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + rs.addr + "/p")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if want := map[bool]int{true: 2, false: 1}[h2]; resp.ProtoMajor != want {
			t.Errorf("h2=%v: served over HTTP/%d", h2, resp.ProtoMajor)
		}
	}
	for _, s := range rs.requests() {
		if !s.tls {
			t.Errorf("request without TLS state: %+v", s)
		}
	}
	out := send(t, func() (net.Conn, error) { return net.Dial("tcp", rs.addr) }, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.0 400 Bad Request") {
		t.Errorf("plain HTTP to the TLS port: %q", out)
	}
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "HTTP request to an HTTPS server") {
			t.Errorf("handshake error: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("failed handshake not reported")
	}
}

// TestTLSListenerSlowHandshakeDoesNotBlockAccept: a client that connects
// and says nothing holds neither Accept nor other clients, and is dropped
// after the handshake timeout.
func TestTLSListenerSlowHandshakeDoesNotBlockAccept(t *testing.T) {
	cfg := testTLSConfig(t, []string{"http/1.1"})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := TLS(inner, TLSConfig{TLS: cfg, HandshakeTimeout: 300 * time.Millisecond})
	defer l.Close()
	silent, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		c, err := tls.Dial("tcp", inner.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Close()
		}
	}()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(3 * time.Second):
		t.Fatal("a silent client held up Accept")
	}
	silent.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("silent client not dropped after the handshake timeout: %v", err)
	}
	l.Close()
	if _, err := l.Accept(); err == nil {
		t.Error("Accept after Close succeeded")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// testTLSConfig is a server config with a fresh self-signed certificate.
func testTLSConfig(t testing.TB, protos []string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: protos}
}
