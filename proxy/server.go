package proxy

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"ztproxy/decide"
	"ztproxy/forwardauth"
	"ztproxy/idheaders"
	"ztproxy/metrics"
	"ztproxy/portal"
)

// snapshot is one immutable, fully built configuration: the decision
// engine and a forwarder per route. Requests load it once and use it to
// the end, so a reload never mixes two configs.
type snapshot struct {
	engine  *decide.Engine
	forward []*forwarder // by decide.Route.Index
}

// Server is the proxy. Build it with New, swap configurations with Update
// and serve it with Serve.
type Server struct {
	opts    Options
	state   atomic.Pointer[snapshot]
	signer  *idheaders.Signer
	metrics *metrics.Metrics
	log     *slog.Logger
	now     func() time.Time
	// engineOpts is what every engine shares across reloads.
	engineOpts  *decide.Options
	portal      *portal.Portal
	forwardAuth *forwardauth.Server

	draining atomic.Bool
	served   atomic.Bool
}

// New builds a Server from an initial configuration.
func New(cfg decide.Config, opts Options) (*Server, error) {
	engineOpts := &decide.Options{Audit: opts.Audit, Logger: opts.Logger, Now: opts.Now, Metrics: opts.Metrics, Tracer: opts.Tracer}
	engineOpts.CheckAndSetDefaults()
	opts.Audit, opts.Logger, opts.Now, opts.Metrics = engineOpts.Audit, engineOpts.Logger, engineOpts.Now, engineOpts.Metrics
	signer, err := idheaders.NewSigner(opts.SigningKey, opts.PublishedKeys...)
	if err != nil {
		return nil, err
	}
	if opts.AssertionCacheSize > 0 {
		if err := signer.SetCacheSize(opts.AssertionCacheSize); err != nil {
			return nil, err
		}
	}
	s := &Server{opts: opts, signer: signer, metrics: opts.Metrics, log: opts.Logger, now: opts.Now, engineOpts: engineOpts,
		portal: portal.New(portal.Options{JWKS: signer.JWKS, Logger: opts.Logger})}
	s.forwardAuth = forwardauth.New(forwardauth.Options{
		Engine: s.engine, Signer: signer, Logger: opts.Logger, Now: opts.Now, Metrics: opts.Metrics,
	})
	if err := s.Update(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// engine is the decision engine of the serving configuration.
func (s *Server) engine() *decide.Engine { return s.state.Load().engine }

// Metrics returns the server's collectors.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// JWKS returns the key set that verifies X-Ztp-Assertion tokens.
func (s *Server) JWKS() []byte { return s.signer.JWKS() }

// SetSigningKeys rotates the assertion keys without a restart: current
// signs from now on (nil: the key generated at start), published are
// served next to it in /.ztp/jwks.json. A change is logged with the key
// ids (public) only.
func (s *Server) SetSigningKeys(current *ecdsa.PrivateKey, published []*ecdsa.PublicKey) error {
	changed, err := s.signer.SetKeys(current, published)
	if err != nil {
		return fmt.Errorf("proxy: assertion keys: %w", err)
	}
	if changed {
		kid, kids := s.signer.KeyIDs()
		s.log.Info("assertion signing keys changed", "signing_kid", kid, "published_kids", kids)
	}
	return nil
}

// Update builds a new snapshot from cfg and swaps it in. If cfg is
// invalid the current snapshot keeps serving and the error is returned.
func (s *Server) Update(cfg decide.Config) error {
	snap, err := s.build(cfg)
	if err != nil {
		return fmt.Errorf("proxy: config rejected: %w", err)
	}
	old := s.state.Swap(snap)
	if old != nil {
		// Let the old transports' idle connections go; in-flight requests
		// keep their connections until they finish.
		for _, f := range old.forward {
			f.close()
		}
		s.dropUpstreamSeries(old, snap)
	}
	return nil
}

func (s *Server) build(cfg decide.Config) (*snapshot, error) {
	engine, err := decide.New(cfg, s.engineOpts)
	if err != nil {
		return nil, err
	}
	snap := &snapshot{engine: engine}
	var errs []error
	for i, rt := range engine.Routes() {
		fwd, err := newForwarder(s, &rt.RouteConfig)
		if err != nil {
			errs = append(errs, fmt.Errorf("routes[%d] (%s): %w", i, rt.Name, err))
			continue
		}
		snap.forward = append(snap.forward, fwd)
	}
	if err := errors.Join(errs...); err != nil {
		for _, f := range snap.forward {
			f.close() // stop the health checks of what was built
		}
		s.dropUpstreamSeries(snap, s.state.Load())
		return nil, err
	}
	return snap, nil
}

// Handler returns the public listener's handler, with the framing checks
// every listener has.
func (s *Server) Handler() http.Handler { return boundary(http.HandlerFunc(s.serveHTTP)) }

// AdminHandler returns the admin listener's handler: /metrics, /healthz,
// /readyz. It must never be exposed on the public listener.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	if s.opts.Server.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if s.draining.Load() || !s.served.Load() || s.state.Load() == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready\n")
			return
		}
		io.WriteString(w, "ready\n")
		s.writeUpstreamHealth(w)
	})
	return boundary(mux)
}
