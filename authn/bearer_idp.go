package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/sync/singleflight"
)

// ErrIdPUnavailable is wrapped by Verify's error when the IdP's discovery
// document could not be fetched, so callers can tell an outage from a bad
// token (the BearerError code is invalid_token either way).
var ErrIdPUnavailable = errors.New("identity provider unavailable")

// discoveryRetryInterval is the least time between two discovery attempts
// for one IdP, so an IdP outage does not turn every request into an
// outbound call.
const discoveryRetryInterval = 5 * time.Second

// discoveryTimeout bounds one discovery attempt even if the configured HTTP
// client has no timeout of its own.
const discoveryTimeout = 10 * time.Second

// idpVerifier verifies tokens of one IdP. Its go-oidc verifier is built on
// first use, after OIDC discovery, so the proxy starts while the IdP is
// down; a failed discovery is retried by a later request.
type idpVerifier struct {
	cfg    IdPConfig
	client *http.Client
	now    func() time.Time
	logger *slog.Logger

	verifier atomic.Pointer[oidc.IDTokenVerifier]
	discover singleflight.Group

	mu          sync.Mutex
	lastFailure time.Time // guarded by mu
	lastErr     error     // guarded by mu
}

func newIdPVerifier(cfg IdPConfig, client *http.Client, now func() time.Time, logger *slog.Logger) *idpVerifier {
	p := &idpVerifier{cfg: cfg, client: client, now: now, logger: logger}
	if cfg.JWKSURL != "" {
		// No discovery needed: building a RemoteKeySet does no I/O.
		p.verifier.Store(p.newOIDCVerifier(cfg.JWKSURL))
	}
	return p
}

// newOIDCVerifier builds the go-oidc verifier for jwksURL. RemoteKeySet
// caches keys, refetches when it meets an unknown kid, and keeps the last
// good keys when a refetch fails.
func (p *idpVerifier) newOIDCVerifier(jwksURL string) *oidc.IDTokenVerifier {
	// The key set's context carries only the HTTP client; go-oidc ignores
	// its cancellation and bounds waits with each request's context.
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), p.client), jwksURL)
	return oidc.NewVerifier(p.cfg.Issuer, keys, &oidc.Config{
		// The audience is checked by checkAudience: go-oidc takes a single
		// client id and knows nothing of Cognito's client_id claim.
		SkipClientIDCheck:    true,
		SupportedSigningAlgs: p.cfg.AllowedAlgs,
		Now:                  p.now,
	})
}

// get returns the go-oidc verifier, running discovery if it has not yet
// succeeded. Concurrent callers share one attempt; an attempt is not
// cancelled by the request that started it, so one impatient client does
// not fail discovery for everyone waiting.
func (p *idpVerifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	if v := p.verifier.Load(); v != nil {
		return v, nil
	}
	p.mu.Lock()
	if !p.lastFailure.IsZero() && p.now().Sub(p.lastFailure) < discoveryRetryInterval {
		err := p.lastErr
		p.mu.Unlock()
		return nil, err
	}
	p.mu.Unlock()

	ch := p.discover.DoChan("discover", func() (any, error) {
		if v := p.verifier.Load(); v != nil {
			return v, nil
		}
		v, err := p.runDiscovery()
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			p.lastFailure, p.lastErr = p.now(), err
			return nil, err
		}
		p.lastFailure, p.lastErr = time.Time{}, nil
		p.verifier.Store(v)
		return v, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*oidc.IDTokenVerifier), nil
	}
}

// runDiscovery fetches the IdP's discovery document and builds a verifier
// from its jwks_uri. go-oidc rejects a document whose issuer differs from
// the configured one.
func (p *idpVerifier) runDiscovery() (*oidc.IDTokenVerifier, error) {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(context.Background(), p.client), discoveryTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, p.cfg.Issuer)
	if err != nil {
		p.logger.Warn("authn: OIDC discovery failed", "idp", p.cfg.Name, "error", err)
		return nil, fmt.Errorf("%w: discovery for %q: %w", ErrIdPUnavailable, p.cfg.Name, err)
	}
	var meta struct {
		JWKSURL string `json:"jwks_uri"`
	}
	err = provider.Claims(&meta)
	if err == nil {
		err = checkEndpointURL(meta.JWKSURL)
	}
	if err != nil {
		err = fmt.Errorf("jwks_uri: %w", err)
		p.logger.Warn("authn: OIDC discovery failed", "idp", p.cfg.Name, "error", err)
		return nil, fmt.Errorf("%w: discovery for %q: %w", ErrIdPUnavailable, p.cfg.Name, err)
	}
	p.logger.Info("authn: OIDC discovery succeeded", "idp", p.cfg.Name, "jwks_uri", meta.JWKSURL)
	return p.newOIDCVerifier(meta.JWKSURL), nil
}
