package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"ztproxy/listener"
)

// Listeners are the sockets a Server serves on.
type Listeners struct {
	Public net.Listener
	Admin  net.Listener
	// TLS configures the public listener; nil serves plaintext (only for
	// tests and for a sidecar behind a TLS-terminating mesh).
	TLS *tls.Config
	// ExtAuthz, when set, serves Envoy's external authorization gRPC API
	// (see ExtAuthzServer). It MUST be reachable only by the local Envoy:
	// bind it to loopback or a unix socket.
	ExtAuthz net.Listener
}

// Serve serves until ctx is cancelled, then drains: it stops accepting,
// waits for in-flight requests up to Options.Server.ShutdownGrace, and
// returns nil if everything finished in time.
func (s *Server) Serve(ctx context.Context, l Listeners) error {
	sc := s.opts.Server
	errLog := log.New(slogWriter{s.log}, "", 0)
	public := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		ReadTimeout:       sc.ReadTimeout,
		WriteTimeout:      sc.WriteTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		TLSConfig:         l.TLS,
		ErrorLog:          errLog,
		// The framing watch of each connection (listener package).
		ConnContext: listener.ConnContext,
	}
	admin := &http.Server{
		Handler:           s.AdminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          errLog,
	}
	errc := make(chan error, 3)
	go func() {
		var err error
		if l.TLS != nil {
			err = public.Serve(listener.TLS(l.Public, listener.TLSConfig{
				TLS: l.TLS, HandshakeTimeout: handshakeTimeout(sc),
				OnHandshakeError: s.logHandshakeError,
			}))
		} else {
			err = public.Serve(listener.Plain(l.Public))
		}
		errc <- err
	}()
	if l.Admin != nil {
		go func() { errc <- admin.Serve(l.Admin) }()
	}
	var extAuthz *grpc.Server
	if l.ExtAuthz != nil {
		extAuthz = s.ExtAuthzServer()
		go func() { errc <- extAuthz.Serve(l.ExtAuthz) }()
	}
	s.served.Store(true)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			_ = public.Close()
			_ = admin.Close()
			if extAuthz != nil {
				extAuthz.Stop()
			}
			return fmt.Errorf("proxy: serve: %w", err)
		}
	}
	s.draining.Store(true)
	grace := sc.ShutdownGrace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := public.Shutdown(sctx)
	_ = admin.Shutdown(sctx)
	stopExtAuthz(sctx, extAuthz)
	if err != nil {
		_ = public.Close()
		return fmt.Errorf("proxy: drain did not finish within %s: %w", grace, err)
	}
	return nil
}

// handshakeTimeout bounds a TLS handshake as net/http does for the
// connections it handshakes itself: the least of the read header, read
// and write timeouts that are set (listener.TLS defaults to 10 s).
func handshakeTimeout(sc ServerConfig) time.Duration {
	var d time.Duration
	for _, t := range []time.Duration{sc.ReadHeaderTimeout, sc.ReadTimeout, sc.WriteTimeout} {
		if t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return d
}

// logHandshakeError logs a failed TLS handshake of the public listener.
// A client that closes or resets the connection before finishing the
// handshake is routine (browsers open speculative connections and close
// them), so that is debug; anything else, such as a protocol error or a
// client refusing the certificate, is a warning (issue 15.13).
func (s *Server) logHandshakeError(remote net.Addr, err error) {
	level := slog.LevelWarn
	if clientWentAway(err) {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "TLS handshake failed", "remote", remote.String(), "err", err)
}

// clientWentAway reports whether err only says that the peer closed or
// reset the connection.
func clientWentAway(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// slogWriter adapts net/http's error log to slog. Its text goes under its
// own key: "msg" is slog's message key, and a second one made the JSON
// line carry the key twice (issue 15.13).
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("http server error", "error", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// stopExtAuthz drains the gRPC server until ctx is done, then closes what
// is left. A nil server is a no-op.
func stopExtAuthz(ctx context.Context, g *grpc.Server) {
	if g == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		g.Stop()
		<-done
	}
}

// ExtAuthzServer returns a gRPC server with the Envoy external
// authorization service registered (forwardauth.Server.GRPCServer).
// Serve it on a listener only the local Envoy can reach (loopback or a
// unix socket): the CheckRequest's source principal is taken as the
// caller's verified device identity.
func (s *Server) ExtAuthzServer(opts ...grpc.ServerOption) *grpc.Server {
	return s.forwardAuth.GRPCServer(opts...)
}

// RegisterExtAuthz registers the Envoy external authorization service on
// an existing gRPC server, for embedders that serve other services too.
func (s *Server) RegisterExtAuthz(g grpc.ServiceRegistrar) { s.forwardAuth.Register(g) }
