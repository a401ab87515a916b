package listener

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// Issue 19 (ACME): a connection that negotiates acme-tls/1 (TLS-ALPN-01
// validation, which may skip the client certificate a listener with
// client_auth require otherwise demands) is closed after the handshake
// and never reaches the HTTP server, whatever the client sends on it.
func TestTLSListenerClosesACMEConnections(t *testing.T) {
	cfg := testTLSConfig(t, []string{"h2", "http/1.1", acmeALPNProto})
	rs := startServer(t, func(l net.Listener) net.Listener { return TLS(l, TLSConfig{TLS: cfg}) }, cfg)
	c, err := tls.Dial("tcp", rs.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{acmeALPNProto}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != acmeALPNProto {
		t.Fatalf("negotiated %q", p)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /over-acme HTTP/1.1\r\nHost: x\r\n\r\n")
	if out, _ := io.ReadAll(c); len(out) != 0 {
		t.Errorf("answer on an acme-tls/1 connection: %q", out)
	}
	if got := rs.requests(); len(got) != 0 {
		t.Errorf("requests served over acme-tls/1: %+v", got)
	}
	// Ordinary clients on the same listener are served.
	c2, err := tls.Dial("tcp", rs.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c2, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if out, _ := io.ReadAll(c2); len(out) == 0 || len(rs.requests()) != 1 {
		t.Errorf("http/1.1 client: %q, %d requests", out, len(rs.requests()))
	}
}
