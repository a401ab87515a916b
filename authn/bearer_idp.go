package authn

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// idpVerifier verifies tokens of one IdP. Its go-oidc verifier and key set
// are built on first use, after OIDC discovery (see discovery), unless a
// JWKS URL is configured.
type idpVerifier struct {
	cfg    IdPConfig
	client *http.Client
	now    func() time.Time
	logger *slog.Logger
	events KeySetEvents

	verifiers *discovery[bearerKeys]
	// userinfo is nil unless cfg.Userinfo is set.
	userinfo *userinfoEnricher
}

// bearerKeys is what verifying an IdP's tokens needs: go-oidc's claim
// checks over ztproxy's key set.
type bearerKeys struct {
	verifier *oidc.IDTokenVerifier
	keys     *KeySet
	// userinfoURL is the discovered userinfo_endpoint ("" without
	// discovery or when the document names none).
	userinfoURL string
}

func newIdPVerifier(cfg IdPConfig, bc *BearerConfig) (*idpVerifier, error) {
	p := &idpVerifier{cfg: cfg, client: bc.HTTPClient, now: bc.Now, logger: bc.Logger, events: bc.KeySetEvents}
	p.verifiers = &discovery[bearerKeys]{
		name: cfg.Name, issuer: cfg.Issuer, client: bc.HTTPClient, now: bc.Now, logger: bc.Logger,
		build: func(provider *oidc.Provider) (*bearerKeys, error) {
			meta, err := discoveredEndpoints(provider, false)
			if err != nil {
				return nil, err
			}
			keys, err := p.newKeys(meta.JWKSURL)
			if err != nil {
				return nil, err
			}
			keys.userinfoURL = meta.UserInfo
			return keys, nil
		},
	}
	if cfg.Userinfo != nil {
		p.userinfo = newUserinfoEnricher(cfg, bc)
	}
	if cfg.JWKSURL != "" {
		// No discovery needed: building a key set does no I/O.
		keys, err := p.newKeys(cfg.JWKSURL)
		if err != nil {
			return nil, err
		}
		p.verifiers.value.Store(keys)
	}
	return p, nil
}

// newKeys builds the key set for jwksURL and the go-oidc verifier over it.
func (p *idpVerifier) newKeys(jwksURL string) (*bearerKeys, error) {
	keys, err := NewKeySet(KeySetConfig{
		Name: p.cfg.Name, URL: jwksURL, Algs: p.cfg.AllowedAlgs, HTTPClient: p.client,
		Refresh: p.cfg.KeyRefresh, Now: p.now, Logger: p.logger, Events: p.events,
	})
	if err != nil {
		return nil, err
	}
	return &bearerKeys{keys: keys, verifier: oidc.NewVerifier(p.cfg.Issuer, keys, &oidc.Config{
		// The audience is checked by checkAudience: go-oidc takes a single
		// client id and knows nothing of Cognito's client_id claim.
		SkipClientIDCheck:    true,
		SupportedSigningAlgs: p.cfg.AllowedAlgs,
		Now:                  p.now,
	})}, nil
}

// get returns the verifier and key set, running discovery if needed.
func (p *idpVerifier) get(ctx context.Context) (*bearerKeys, error) {
	return p.verifiers.get(ctx)
}
