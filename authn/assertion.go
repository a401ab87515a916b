package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"ztproxy/identity"
)

// AssertionVerifier checks X-Ztp-Assertion tokens from front proxies, so a
// sidecar can accept the identity a front ztproxy established without a
// new sign-in. Only tokens signed by a trusted JWKS (a URL or a file) with
// aud equal to this service are accepted; a token minted for another
// service fails.
type AssertionVerifier struct {
	keys   assertionKeys
	now    func() time.Time
	logger *slog.Logger
}

// AssertionConfig configures an AssertionVerifier.
type AssertionConfig struct {
	// Sources are the trusted JWKS: https URLs (http for loopback) or
	// files.
	Sources []string
	// HTTPClient fetches the URLs; it is hardened with NewIdPHTTPClient.
	HTTPClient *http.Client
	// KeyRefresh says how URL key sets are kept current.
	KeyRefresh KeyRefresh
	Now        func() time.Time
	Logger     *slog.Logger
	// Events receive key set fetches, for metrics; sets are named
	// "assertion.trusted_jwks[<index>]".
	Events KeySetEvents
}

// NewAssertionVerifier trusts the keys at cfg.Sources. URL sets are
// fetched on first use and kept current like an IdP's keys (KeySet); files
// are read now.
func NewAssertionVerifier(cfg AssertionConfig) (*AssertionVerifier, error) {
	if len(cfg.Sources) == 0 {
		return nil, errors.New("authn: assertion verifier: no trusted JWKS")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client := NewIdPHTTPClient(cfg.HTTPClient)
	var sets assertionKeys
	for i, src := range cfg.Sources {
		kc := KeySetConfig{
			Name: fmt.Sprintf("assertion.trusted_jwks[%d]", i), Algs: []string{assertionAlg},
			HTTPClient: client, Refresh: cfg.KeyRefresh, Now: cfg.Now, Logger: cfg.Logger, Events: cfg.Events,
		}
		ks, err := KeySetFromSource(src, kc)
		if err != nil {
			return nil, fmt.Errorf("authn: trusted JWKS %s: %w", src, err)
		}
		sets = append(sets, ks)
	}
	return &AssertionVerifier{keys: sets, now: cfg.Now, logger: cfg.Logger}, nil
}

// assertionAlg is the only algorithm ztproxy signs assertions with.
const assertionAlg = "ES256"

// assertionKeys accepts a signature any of its sets verifies. A kid is
// looked up in every set before any set is refetched for it, so an unknown
// kid costs at most one rate-limited fetch per URL set.
type assertionKeys []*KeySet

var _ oidc.KeySet = assertionKeys(nil)

func (m assertionKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	var last error
	unknown := make([]bool, len(m))
	for i, ks := range m {
		payload, _, err := ks.verify(ctx, jwt, false)
		switch {
		case err == nil:
			return payload, nil
		case errors.Is(err, errNoKeys):
			return nil, err // a set holds the kid and it did not verify: no refetch helps
		case errors.Is(err, errUnknownKID):
			unknown[i] = true
		}
		if last == nil || !errors.Is(err, errUnknownKID) {
			last = err
		}
	}
	for i, ks := range m {
		if !unknown[i] {
			continue
		}
		payload, _, err := ks.verify(ctx, jwt, true)
		if err == nil {
			return payload, nil
		}
		if !errors.Is(err, errUnknownKID) {
			last = err
		}
	}
	return nil, last
}

// assertionClaims mirror the proxy's assertion.
type assertionClaims struct {
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Groups        []string `json:"groups"`
	Kind          string   `json:"kind"`
	Auth          string   `json:"auth"`
	AMR           []string `json:"amr"`
	ACR           string   `json:"acr"`
	AuthTime      int64    `json:"auth_time"`
	Device        string   `json:"device"`
	DeviceFP      string   `json:"device_fp"`
	IdP           string   `json:"idp"`
}

// Verify checks raw for audience (this service) and returns the
// principal it carries, and the device the front proxy saw (if any).
func (v *AssertionVerifier) Verify(ctx context.Context, raw, audience string) (identity.Principal, identity.Device, error) {
	verifier := oidc.NewVerifier("", v.keys, &oidc.Config{
		ClientID: audience, SkipIssuerCheck: true, SupportedSigningAlgs: []string{assertionAlg}, Now: v.now,
	})
	tok, err := verifier.Verify(ctx, raw)
	if err != nil {
		return identity.Principal{}, identity.Device{}, &BearerError{Code: CodeInvalidToken, Description: "identity assertion rejected", Err: err}
	}
	var c assertionClaims
	if err := tok.Claims(&c); err != nil || tok.Subject == "" {
		return identity.Principal{}, identity.Device{}, &BearerError{Code: CodeInvalidToken, Description: "identity assertion rejected", Err: err}
	}
	p := identity.Principal{
		Kind: identity.PrincipalKind(c.Kind), ID: tok.Subject, Subject: tok.Subject, Issuer: tok.Issuer,
		Email: acceptedEmail(c.Email, c.IdP, tok.Subject, v.logger), Groups: c.Groups, AuthKind: identity.AuthKind(c.Auth), AMR: c.AMR, ACR: c.ACR,
		Expiry: tok.Expiry, IdP: c.IdP,
	}
	p.EmailVerified = p.Email != "" && c.EmailVerified
	if p.Kind != identity.KindUser && p.Kind != identity.KindService {
		p.Kind = identity.KindUser
	}
	if c.AuthTime > 0 {
		p.AuthTime = time.Unix(c.AuthTime, 0)
	}
	var d identity.Device
	if c.Device != "" || c.DeviceFP != "" {
		d = identity.Device{Present: true, ID: c.Device, Fingerprint: c.DeviceFP}
		if strings.HasPrefix(c.Device, "spiffe://") {
			d.SPIFFEID = c.Device
		}
	}
	return p, d, nil
}
