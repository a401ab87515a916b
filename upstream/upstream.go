package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Mode selects the HTTP/1.1 client of an http:// upstream.
type Mode string

const (
	// Lean sends body-less requests through the lean transport
	// (leanTransport) and the rest through net/http's Transport.
	Lean Mode = "lean"
	// Standard sends every request through net/http's Transport.
	Standard Mode = "standard"
)

// Transport is a route's own upstream transport.
type Transport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// Config is one route's upstream.
type Config struct {
	// URL is the upstream: http:// or https://.
	URL *url.URL
	// CAs, when non-nil, replaces the system roots for an https upstream.
	CAs        *x509.CertPool
	ServerName string
	// ResponseHeaderTimeout bounds the wait for the response headers.
	ResponseHeaderTimeout time.Duration
	// DialTimeout bounds connecting (TCP, and the TLS handshake of an
	// https upstream); 0 means 10s.
	DialTimeout time.Duration
	// IdleConnTimeout closes pooled connections idle this long; 0 means
	// 90s.
	IdleConnTimeout time.Duration
	// Mode picks the client of an http:// upstream; "" means Lean.
	Mode Mode
	// OnUnsolicited, when set, is told about an idle connection closed
	// because the upstream sent bytes on it (lean transport only).
	OnUnsolicited func()
}

// New builds the transport of one route's upstream: the lean transport
// for a plain http:// upstream (unless Mode is Standard), else a tuned
// net/http Transport.
func New(cfg Config) (Transport, error) {
	up := cfg.URL
	if up == nil || (up.Scheme != "http" && up.Scheme != "https" && up.Scheme != SchemeH2C) {
		return nil, errors.New("upstream must be an http, https or h2c URL")
	}
	switch cfg.Mode {
	case "", Lean, Standard:
	default:
		return nil, fmt.Errorf("upstream transport must be lean or standard, not %q", cfg.Mode)
	}
	dialTimeout, idleTimeout := cfg.DialTimeout, cfg.IdleConnTimeout
	if dialTimeout <= 0 {
		dialTimeout = 10 * time.Second
	}
	if idleTimeout <= 0 {
		idleTimeout = 90 * time.Second
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil, // never send identity through an environment proxy
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       idleTimeout,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		DisableCompression:    true, // pass Accept-Encoding through untouched
		ForceAttemptHTTP2:     up.Scheme == "https",
	}
	if up.Scheme == "https" {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.CAs, ServerName: cfg.ServerName}
	}
	if up.Scheme == SchemeH2C {
		// Cleartext HTTP/2 with prior knowledge, and nothing else: never
		// HTTP/1 to an upstream that speaks gRPC.
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
		return t, nil
	}
	if up.Scheme == "http" && cfg.Mode != Standard {
		// Plain body-less requests skip net/http's per-connection
		// goroutines; the rest still go through t.
		lt := newLeanTransport(t, dialer.DialContext)
		lt.onUnsolicited = cfg.OnUnsolicited
		return lt, nil
	}
	return t, nil
}

// SchemeH2C is the upstream URL scheme of cleartext HTTP/2 (prior
// knowledge, RFC 9113 §3.3): gRPC and HTTP/2 services without TLS.
// Requests to it are made with RequestScheme's "http".
const SchemeH2C = "h2c"

// RequestScheme is the scheme of requests to an upstream URL: "http" for
// h2c (the transport is HTTP/2-only), else the URL's own.
func RequestScheme(u *url.URL) string {
	if u.Scheme == SchemeH2C {
		return "http"
	}
	return u.Scheme
}

// IsTimeout reports whether err is a network timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
