package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Listeners are the sockets a Server serves on.
type Listeners struct {
	Public net.Listener
	Admin  net.Listener
	// TLS configures the public listener; nil serves plaintext (only for
	// tests and for a sidecar behind a TLS-terminating mesh).
	TLS *tls.Config
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
	}
	admin := &http.Server{
		Handler:           s.AdminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          errLog,
	}
	errc := make(chan error, 2)
	go func() {
		var err error
		if l.TLS != nil {
			err = public.Serve(tls.NewListener(l.Public, l.TLS))
		} else {
			err = public.Serve(l.Public)
		}
		errc <- err
	}()
	if l.Admin != nil {
		go func() { errc <- admin.Serve(l.Admin) }()
	}
	s.served.Store(true)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			_ = public.Close()
			_ = admin.Close()
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
	if err != nil {
		_ = public.Close()
		return fmt.Errorf("proxy: drain did not finish within %s: %w", grace, err)
	}
	return nil
}

// slogWriter adapts net/http's error log to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	w.l.Warn("http server", "msg", msg)
	return len(p), nil
}
