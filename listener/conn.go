package listener

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
)

// watchedConn is a connection whose reads feed a framing watch.
type watchedConn struct {
	net.Conn
	watch *framingWatch
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.watch.feed(p[:n])
	}
	return n, err
}

// watchedTLSConn is a watched TLS connection. net/http sets Request.TLS
// from ConnectionState for a connection that is not a *tls.Conn.
type watchedTLSConn struct {
	watchedConn
	tls *tls.Conn
}

// ConnectionState returns the state of the completed handshake.
func (c *watchedTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

func watch(c net.Conn) *watchedConn { return &watchedConn{Conn: c, watch: newFramingWatch()} }

type watchKey struct{}

// ConnContext is an http.Server ConnContext: it lets handlers find the
// framing watch of their connection (see ConflictingFraming).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	switch c := c.(type) {
	case *watchedConn:
		return context.WithValue(ctx, watchKey{}, c.watch)
	case *watchedTLSConn:
		return context.WithValue(ctx, watchKey{}, c.watch)
	}
	return ctx
}

// ConflictingFraming reports whether r is an HTTP/1 request that had both
// Content-Length and Transfer-Encoding (net/http removed Content-Length
// before r reached the handler). It is false for requests on connections
// that were not accepted through this package, for HTTP/2, and whenever
// the watch could not follow the connection.
func ConflictingFraming(r *http.Request) bool {
	if r.ProtoMajor != 1 || len(r.TransferEncoding) == 0 {
		return false
	}
	w, _ := r.Context().Value(watchKey{}).(*framingWatch)
	return w != nil && w.Conflicting()
}

// Plain wraps a plaintext listener: every connection it accepts is
// watched.
func Plain(inner net.Listener) net.Listener { return plainListener{inner} }

type plainListener struct{ net.Listener }

func (l plainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return watch(c), nil
}
