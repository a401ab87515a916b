package authn

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// idpVerifier verifies tokens of one IdP. Its go-oidc verifier is built on
// first use, after OIDC discovery (see discovery), unless a JWKS URL is
// configured.
type idpVerifier struct {
	cfg    IdPConfig
	client *http.Client
	now    func() time.Time
	logger *slog.Logger

	verifiers *discovery[oidc.IDTokenVerifier]
}

func newIdPVerifier(cfg IdPConfig, client *http.Client, now func() time.Time, logger *slog.Logger) *idpVerifier {
	p := &idpVerifier{cfg: cfg, client: client, now: now, logger: logger}
	p.verifiers = &discovery[oidc.IDTokenVerifier]{
		name: cfg.Name, issuer: cfg.Issuer, client: client, now: now, logger: logger,
		build: func(provider *oidc.Provider) (*oidc.IDTokenVerifier, error) {
			var meta struct {
				JWKSURL string `json:"jwks_uri"`
			}
			if err := provider.Claims(&meta); err != nil {
				return nil, fmt.Errorf("jwks_uri: %w", err)
			}
			if err := checkEndpointURL(meta.JWKSURL); err != nil {
				return nil, fmt.Errorf("jwks_uri: %w", err)
			}
			return p.newOIDCVerifier(meta.JWKSURL), nil
		},
	}
	if cfg.JWKSURL != "" {
		// No discovery needed: building a RemoteKeySet does no I/O.
		p.verifiers.value.Store(p.newOIDCVerifier(cfg.JWKSURL))
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

// get returns the go-oidc verifier, running discovery if needed.
func (p *idpVerifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	return p.verifiers.get(ctx)
}
