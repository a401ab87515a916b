package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"ztproxy/certs"
	"ztproxy/config"
	"ztproxy/store"
)

// buildACMECerts builds the certificate manager of tls.acme once the store
// is open: the store is its certificate cache, shared by every replica.
func (in *instance) buildACMECerts(st store.Store, mode startMode, rep *config.Report) {
	rt := in.rt
	if rt.Certs == nil || rt.Certs.ACME == nil || st == nil {
		return
	}
	if mode == assembleCheck {
		rep.Note("tls.acme", "the ACME CA is not contacted: serve obtains (or loads from the store) the certificates of %s at start, and the CA must reach port 443 (TLS-ALPN-01) or tls.acme.http_listen (HTTP-01) under those names",
			strings.Join(rt.Certs.ACME.Domains, ", "))
	}
	cache, err := config.ACMECertificateCache(st)
	if err != nil {
		rep.Add("tls.acme", err)
		return
	}
	cfg := *rt.Certs
	acme := *cfg.ACME
	acme.Cache = cache
	cfg.ACME = &acme
	cfg.Logger = in.logger
	m, err := certs.New(cfg)
	rep.Add("tls", err)
	in.certs = m
}

// serveACMEHTTP serves HTTP-01 challenges on tls.acme.http_listen until
// ctx ends; every other request is redirected to https.
func serveACMEHTTP(ctx context.Context, addr string, handler http.Handler, logger *slog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("acme: HTTP-01 listener stopped", "listen", addr, "err", err)
		}
	}()
	logger.Info("acme: serving HTTP-01 challenges", "listen", "http://"+l.Addr().String())
	return nil
}
