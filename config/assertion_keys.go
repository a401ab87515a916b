package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// rotationKeyPaths are the YAML paths of the keys published next to the
// signing key, with their values.
func (f *File) rotationKeyPaths() []struct{ path, name string } {
	return []struct{ path, name string }{
		{"assertion.next_signing_key_file", f.Assertion.NextSigningKeyFile},
		{"assertion.previous_signing_key_file", f.Assertion.PreviousSigningKeyFile},
	}
}

// checkRotationKeys checks assertion.next_signing_key_file and
// previous_signing_key_file: P-256 keys, only with a signing_key_file (a
// generated key cannot be rotated: it changes at every start), and not the
// signing key itself.
func (f *File) checkRotationKeys(c *collector) {
	a := &f.Assertion
	for _, p := range []struct {
		path string
		name *string
	}{{"assertion.next_signing_key_file", &a.NextSigningKeyFile}, {"assertion.previous_signing_key_file", &a.PreviousSigningKeyFile}} {
		if !f.checkFile(c, p.path, p.name) {
			continue
		}
		if a.SigningKeyFile == "" {
			c.add(p.path, "needs assertion.signing_key_file: a rotation replaces a configured key")
			continue
		}
		pub, err := LoadPublicKey(*p.name)
		if err != nil {
			c.add(p.path, "%v", err)
			continue
		}
		if cur, err := LoadSigningKey(a.SigningKeyFile); err == nil && cur.PublicKey.Equal(pub) {
			c.add(p.path, "is the same key as assertion.signing_key_file")
		}
	}
}

// buildPublishedKeys loads the next and previous assertion keys.
func buildPublishedKeys(f *File, c *collector) []*ecdsa.PublicKey {
	var keys []*ecdsa.PublicKey
	for _, p := range f.rotationKeyPaths() {
		if p.name == "" {
			continue
		}
		pub, err := LoadPublicKey(p.name)
		if err != nil {
			addErr(c, p.path, err)
			continue
		}
		keys = append(keys, pub)
	}
	return keys
}

// LoadPublicKey reads an EC P-256 key from a PEM file: a private key (as
// LoadSigningKey) or a public key ("PUBLIC KEY", PKIX), so that a retired
// key can stay published after its private half is destroyed. Errors name
// the file but never include key material.
func LoadPublicKey(name string) (*ecdsa.PublicKey, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, unwrapPathError(err))
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		key, err := LoadSigningKey(name)
		if err != nil {
			return nil, err
		}
		return &key.PublicKey, nil
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: malformed public key", name)
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not an EC P-256 key (assertions are signed with ES256)", name)
	}
	return ec, nil
}
