package proxy

import (
	"crypto/ecdsa"
	"log/slog"
	"net/http"
	"time"
	"ztproxy/tracing"

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
	// PublishedKeys are published next to SigningKey but never sign: the
	// next key of a rotation, and the previous one, so that assertions
	// signed before the rotation verify until they expire.
	PublishedKeys []*ecdsa.PublicKey
	// Tracer traces requests (tracing.New); nil is tracing off.
	Tracer *tracing.Tracer
	// AssertionCacheSize bounds the signed assertions cached;
	// idheaders.DefaultAssertionCacheSize when 0.
	AssertionCacheSize int
	Audit              *slog.Logger
	Logger             *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Metrics registers the proxy's collectors; nil means a private
	// registry.
	Metrics *metrics.Metrics
	// UpstreamTransport, when set, replaces every route's upstream
	// transport (benchmarks use a no-op one; embedders may add tracing).
	UpstreamTransport http.RoundTripper
}
