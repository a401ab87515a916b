package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// acmeALPNProto is the ALPN protocol of ACME TLS-ALPN-01 validation
// (certs.ACMEALPNProto; the listener imports nothing of the project).
const acmeALPNProto = "acme-tls/1"

// TLSConfig configures a TLS listener.
type TLSConfig struct {
	// TLS is the server configuration; its NextProtos decide HTTP/2.
	TLS *tls.Config
	// HandshakeTimeout bounds each handshake; 0 means 10 s.
	HandshakeTimeout time.Duration
	// OnHandshakeError, if set, is told about failed handshakes (a logger;
	// net/http logs them itself for connections it handshakes).
	OnHandshakeError func(remote net.Addr, err error)
}

// TLS returns a listener that completes each TLS handshake on its own
// goroutine before Accept hands the connection out, so that net/http
// reads HTTP/1 through the framing watch: an HTTP/2 connection (ALPN h2)
// is handed out as the *tls.Conn itself for net/http's HTTP/2 server,
// anything else as a watched connection whose ConnectionState net/http
// copies into Request.TLS. A slow or failing handshake never holds up
// Accept. Close stops accepting and abandons handshakes in progress.
func TLS(inner net.Listener, cfg TLSConfig) net.Listener {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsListener{inner: inner, cfg: cfg, ctx: ctx, cancel: cancel,
		conns: make(chan net.Conn), errs: make(chan error)}
	go l.acceptLoop()
	return l
}

type tlsListener struct {
	inner  net.Listener
	cfg    TLSConfig
	ctx    context.Context
	cancel context.CancelFunc
	conns  chan net.Conn
	errs   chan error
	once   sync.Once
}

func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }

// Accept returns the next connection whose handshake completed, or the
// inner listener's error as it was (net/http retries temporary ones).
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close closes the inner listener and every connection still in its
// handshake.
func (l *tlsListener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.inner.Close()
	})
	return err
}

func (l *tlsListener) acceptLoop() {
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.ctx.Done():
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go l.handshake(raw)
	}
}

// handshake completes the TLS handshake of raw and hands the connection
// to Accept.
func (l *tlsListener) handshake(raw net.Conn) {
	tc := tls.Server(raw, l.cfg.TLS)
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.handshakeFailed(raw, err)
		tc.Close()
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == acmeALPNProto {
		// A TLS-ALPN-01 validation (RFC 8737 §3): the handshake was the
		// whole exchange. Nothing else is served on such a connection,
		// which may have skipped the client certificate.
		tc.Close()
		return
	}
	var c net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		c = &watchedTLSConn{watchedConn: watchedConn{Conn: tc, watch: newFramingWatch()}, tls: tc}
	}
	select {
	case l.conns <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// handshakeFailed reports a failed handshake and, like net/http, answers
// a client that spoke plain HTTP to the TLS port with a 400.
func (l *tlsListener) handshakeFailed(raw net.Conn, err error) {
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) && rhe.Conn != nil && looksLikeHTTP(rhe.RecordHeader) {
		raw.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(raw, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		err = errors.New("client sent an HTTP request to an HTTPS server")
	}
	if l.cfg.OnHandshakeError != nil && l.ctx.Err() == nil {
		l.cfg.OnHandshakeError(raw.RemoteAddr(), err)
	}
}

// looksLikeHTTP reports whether a TLS record header is the start of an
// HTTP request line.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}
