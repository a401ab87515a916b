package idheaders

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// assertionAlg is the only algorithm assertions are signed with.
const assertionAlg = jose.ES256

// signingKeys is one immutable generation of the assertion keys: the key
// that signs now, and the key set published at /.ztp/jwks.json (the
// signing key first, then the next and previous keys of a rotation).
type signingKeys struct {
	kid    string
	signer jose.Signer
	jwks   []byte
	kids   []string // every published kid, signing key first
}

// newSigningKeys signs with current and publishes it together with
// published (duplicates of current, or of each other, are published once).
func newSigningKeys(current *ecdsa.PrivateKey, published []*ecdsa.PublicKey) (*signingKeys, error) {
	if current == nil {
		return nil, errors.New("assertion: no signing key")
	}
	set := jose.JSONWebKeySet{}
	kids := []string{}
	for _, pub := range append([]*ecdsa.PublicKey{&current.PublicKey}, published...) {
		if pub == nil || pub.Curve != elliptic.P256() {
			return nil, errors.New("assertion: keys must be EC P-256")
		}
		kid, err := thumbprint(pub)
		if err != nil {
			return nil, err
		}
		if contains(kids, kid) {
			continue
		}
		kids = append(kids, kid)
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(assertionAlg), Use: "sig"})
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("assertion: key set: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: assertionAlg, Key: jose.JSONWebKey{Key: current, KeyID: kids[0]}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("assertion: signer: %w", err)
	}
	return &signingKeys{kid: kids[0], signer: signer, jwks: jwks, kids: kids}, nil
}

// thumbprint is the key's RFC 7638 JWK thumbprint (SHA-256, base64url):
// the kid of every key ztproxy publishes, so the same key file has the
// same kid on every replica and after every restart.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("assertion: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// sign returns the compact JWS of payload.
func (k *signingKeys) sign(payload []byte) (string, error) {
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("assertion: sign: %w", err)
	}
	return jws.CompactSerialize()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
