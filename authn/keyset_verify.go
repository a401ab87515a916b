package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// maxKIDBytes bounds the kid a token may carry.
const maxKIDBytes = 256

// keyReferenceHeaders are JOSE header parameters that name or carry a key.
// Trusting any of them lets the token choose its own key; a verifier that
// only uses the issuer's JWKS has no use for them, so tokens carrying them
// are refused outright rather than ignored.
var keyReferenceHeaders = []string{"jku", "x5u", "jwk", "x5c"}

var _ oidc.KeySet = (*KeySet)(nil)

// errNoKeys is the cause for a token whose kid the set holds (or that has
// no kid) but that no key of the set verifies.
var errNoKeys = errors.New("no key of the issuer verifies the token")

// keyCapture records, for one verification through go-oidc, which key
// verified the token and why none did.
type keyCapture struct {
	key *trustedKey
	err error
}

type keyCaptureCtx struct{}

// withKeyCapture returns a context through which VerifySignature reports
// to c.
func withKeyCapture(ctx context.Context, c *keyCapture) context.Context {
	return context.WithValue(ctx, keyCaptureCtx{}, c)
}

// VerifySignature implements oidc.KeySet: it verifies raw with the set's
// keys and returns the payload. Claims are not checked.
func (k *KeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, key, err := k.verify(ctx, raw, true)
	if c, ok := ctx.Value(keyCaptureCtx{}).(*keyCapture); ok {
		c.key, c.err = key, err
	}
	return payload, err
}

// parsedJWS is a compact JWS with its one signature's header checked.
type parsedJWS struct {
	jws *jose.JSONWebSignature
	kid string
	alg string
}

// maxJOSEHeaderBytes bounds the encoded JOSE header of a token.
const maxJOSEHeaderBytes = 4 << 10

// parseJWS parses raw, allowing only algs, and refuses the header shapes
// no IdP token needs: several signatures, key references, an oversized kid.
func parseJWS(raw string, algs []jose.SignatureAlgorithm) (*parsedJWS, error) {
	head, _, ok := strings.Cut(raw, ".")
	if !ok || len(head) > maxJOSEHeaderBytes {
		return nil, errors.New("malformed JWS header")
	}
	decoded, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return nil, fmt.Errorf("malformed JWS header: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(decoded, &fields); err != nil {
		return nil, fmt.Errorf("malformed JWS header: %w", err)
	}
	for _, name := range keyReferenceHeaders {
		if _, ok := fields[name]; ok {
			return nil, fmt.Errorf("header %q is not accepted: keys come only from the issuer's JWKS", name)
		}
	}
	jws, err := jose.ParseSigned(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("malformed or disallowed JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("exactly one signature is required")
	}
	h := jws.Signatures[0].Protected
	if len(h.KeyID) > maxKIDBytes {
		return nil, fmt.Errorf("kid longer than %d bytes", maxKIDBytes)
	}
	return &parsedJWS{jws: jws, kid: h.KeyID, alg: h.Algorithm}, nil
}

// verify checks raw's signature. A kid the set does not hold triggers one
// rate-limited refetch when refetch is true.
func (k *KeySet) verify(ctx context.Context, raw string, refetch bool) ([]byte, *trustedKey, error) {
	p, err := parseJWS(raw, k.algs)
	if err != nil {
		return nil, nil, err
	}
	s, err := k.current(ctx)
	if err != nil {
		return nil, nil, err
	}
	keys, known := s.candidates(p.kid, p.alg)
	if !known {
		if !refetch {
			return nil, nil, errUnknownKID
		}
		if s, err = k.refetchForUnknownKID(ctx); err != nil {
			return nil, nil, err
		}
		if keys, known = s.candidates(p.kid, p.alg); !known {
			return nil, nil, errUnknownKID
		}
	}
	for _, key := range keys {
		if payload, err := p.jws.Verify(key.public); err == nil {
			return payload, key, nil
		}
	}
	return nil, nil, fmt.Errorf("%w (kid %q, alg %s)", errNoKeys, truncateKID(p.kid), p.alg)
}

// candidates returns the keys that may have signed a token with kid and
// alg. known is false when kid is set and the set has no key with it; a
// token without kid is tried against every key that fits alg.
func (s *keySnapshot) candidates(kid, alg string) (keys []*trustedKey, known bool) {
	pool := s.keys
	if kid != "" {
		var ok bool
		if pool, ok = s.byKID[kid]; !ok {
			return nil, false
		}
	}
	for _, key := range pool {
		if (key.alg == "" || key.alg == alg) && keyFitsAlg(key.public, alg) {
			keys = append(keys, key)
		}
	}
	return keys, true
}

// keyFitsAlg reports whether alg is a signature algorithm for pub's type
// (and curve), so a key is never used with an algorithm of another family.
func keyFitsAlg(pub any, alg string) bool {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
