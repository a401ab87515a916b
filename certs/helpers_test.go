package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// handshakeResult is what the test server saw for one connection.
type handshakeResult struct {
	state tls.ConnectionState
	err   error
}

// startTLSServer listens on loopback with cfg and reports every server-side
// handshake. After a successful handshake it writes one byte so that a
// TLS 1.3 client learns whether its certificate was accepted.
func startTLSServer(t *testing.T, cfg *tls.Config) (string, <-chan handshakeResult) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	results := make(chan handshakeResult, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(conn *tls.Conn) {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				err := conn.Handshake()
				results <- handshakeResult{state: conn.ConnectionState(), err: err}
				if err == nil {
					conn.Write([]byte{'k'})
				}
			}(conn.(*tls.Conn))
		}
	}()
	return ln.Addr().String(), results
}

// dial connects with clientCfg and returns the server's view of the
// handshake, the client's error and the server leaf the client saw.
func dial(t *testing.T, addr string, results <-chan handshakeResult, clientCfg *tls.Config) (handshakeResult, error, *x509.Certificate) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, clientCfg)
	var serverLeaf *x509.Certificate
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		serverLeaf = conn.ConnectionState().PeerCertificates[0]
		_, err = io.ReadFull(conn, make([]byte, 1))
		conn.Close()
	}
	select {
	case res := <-results:
		return res, err, serverLeaf
	case <-time.After(5 * time.Second):
		t.Fatal("server did not report a handshake")
		return handshakeResult{}, nil, nil
	}
}

// devSet writes a dev CA to a fresh directory.
func devSet(t *testing.T, opts DevOptions) DevFiles {
	t.Helper()
	if opts.Out == "" {
		opts.Out = filepath.Join(t.TempDir(), "dev")
	}
	files, err := WriteDev(opts)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// clientConfig trusts the given CA files and, if certFile is set, presents
// that client certificate.
func clientConfig(t *testing.T, certFile, keyFile string, caFiles ...string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	for _, f := range caFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !pool.AppendCertsFromPEM(data) {
			t.Fatalf("no certificates in %s", f)
		}
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// readCert parses the first certificate of a PEM file.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCertificates(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// copyFile replaces dst with src's content atomically.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// quietLogger keeps expected reload logs out of test output.
var quietLogger = slog.New(slog.DiscardHandler)

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// hookRecorder collects reload hook calls.
type hookRecorder struct {
	mu    sync.Mutex
	calls []error
}

func (h *hookRecorder) record(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, err)
}

func (h *hookRecorder) snapshot() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.calls...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
