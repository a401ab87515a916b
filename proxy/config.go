package proxy

import (
	"crypto/ecdsa"
	"log/slog"
	"net/http"
	"time"

	"ztproxy/idheaders"
	"ztproxy/metrics"
)

// ServerConfig holds listener limits and timeouts.
type ServerConfig struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MaxBodyBytes bounds proxied request bodies; 0 means unlimited.
	MaxBodyBytes  int64
	ShutdownGrace time.Duration
	// Pprof serves /debug/pprof/ on the admin listener (never the public
	// one) for CPU and allocation profiles under load.
	Pprof bool
}

// DefaultAssertionCacheSize is the signer's assertion cache bound when
// Options.AssertionCacheSize is 0.
const DefaultAssertionCacheSize = idheaders.DefaultAssertionCacheSize

// Options are the non-reloadable parts of a Server.
type Options struct {
	Server ServerConfig
	// Signer signs identity assertions; its key is published at
	// /.ztp/jwks.json.
	SigningKey *ecdsa.PrivateKey
	// AssertionCacheSize bounds the signed assertions cached;
	// idheaders.DefaultAssertionCacheSize when 0.
	AssertionCacheSize int
	// ExtraVerificationKeys are older public keys still published so that
	// assertions signed before a key rotation verify until they expire.
	Audit  *slog.Logger
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Metrics registers the proxy's collectors; nil means a private
	// registry.
	Metrics *metrics.Metrics
	// UpstreamTransport, when set, replaces every route's upstream
	// transport (benchmarks use a no-op one; embedders may add tracing).
	UpstreamTransport http.RoundTripper
}
