package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"ztproxy/identity"
)

// AssertionVerifier checks X-Ztp-Assertion tokens from front proxies, so a
// sidecar can accept the identity a front ztproxy established without a
// new sign-in. Only tokens signed by a trusted JWKS (a URL or a file) with
// aud equal to this service are accepted; a token minted for another
// service fails.
type AssertionVerifier struct {
	keys oidc.KeySet
	now  func() time.Time
}

// NewAssertionVerifier trusts the keys at sources: http(s) JWKS URLs
// (fetched on first use, cached, refetched for unknown kids) or JWKS files.
func NewAssertionVerifier(sources []string, client *http.Client, now func() time.Time) (*AssertionVerifier, error) {
	if len(sources) == 0 {
		return nil, errors.New("authn: assertion verifier: no trusted JWKS")
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	var sets multiKeySet
	for _, src := range sources {
		if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
			sets = append(sets, oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), client), src))
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("authn: trusted JWKS %s: %w", src, err)
		}
		var jwks jose.JSONWebKeySet
		if err := json.Unmarshal(data, &jwks); err != nil || len(jwks.Keys) == 0 {
			return nil, fmt.Errorf("authn: trusted JWKS %s: not a JWK set", src)
		}
		static := &oidc.StaticKeySet{}
		for _, k := range jwks.Keys {
			static.PublicKeys = append(static.PublicKeys, k.Key)
		}
		sets = append(sets, static)
	}
	return &AssertionVerifier{keys: sets, now: now}, nil
}

// multiKeySet accepts a signature any of its sets verifies.
type multiKeySet []oidc.KeySet

func (m multiKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	var last error
	for _, ks := range m {
		payload, err := ks.VerifySignature(ctx, jwt)
		if err == nil {
			return payload, nil
		}
		last = err
	}
	return nil, last
}

// assertionClaims mirror the proxy's assertion.
type assertionClaims struct {
	Email    string   `json:"email"`
	Groups   []string `json:"groups"`
	Kind     string   `json:"kind"`
	Auth     string   `json:"auth"`
	AMR      []string `json:"amr"`
	ACR      string   `json:"acr"`
	AuthTime int64    `json:"auth_time"`
	Device   string   `json:"device"`
	DeviceFP string   `json:"device_fp"`
	IdP      string   `json:"idp"`
}

// Verify checks raw for audience (this service) and returns the
// principal it carries, and the device the front proxy saw (if any).
func (v *AssertionVerifier) Verify(ctx context.Context, raw, audience string) (identity.Principal, identity.Device, error) {
	verifier := oidc.NewVerifier("", v.keys, &oidc.Config{
		ClientID: audience, SkipIssuerCheck: true, SupportedSigningAlgs: []string{"ES256"}, Now: v.now,
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
		Email: c.Email, Groups: c.Groups, AuthKind: identity.AuthKind(c.Auth), AMR: c.AMR, ACR: c.ACR,
		Expiry: tok.Expiry, IdP: c.IdP,
	}
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
