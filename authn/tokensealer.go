package authn

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// tokenSealerKeyInfo separates the at-rest key from the cookie keys
// derived from the same secrets.
const tokenSealerKeyInfo = "ztproxy refresh token at rest v1"

// TokenSealer encrypts tokens kept server-side (refresh tokens in the
// store) with keys derived from the session secrets: the first seals,
// every one opens, so secrets rotate as they do for cookies.
type TokenSealer struct {
	aeads []cipher.AEAD
}

// NewTokenSealer derives the at-rest keys from secrets.
func NewTokenSealer(secrets [][]byte) (*TokenSealer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("authn: token sealer: no secrets")
	}
	s := &TokenSealer{}
	for _, secret := range secrets {
		if len(secret) < MinSessionSecretBytes {
			return nil, fmt.Errorf("authn: token sealer: secret shorter than %d bytes", MinSessionSecretBytes)
		}
		aead, err := deriveAEAD(secret, tokenSealerKeyInfo)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// Seal encrypts plaintext: nonce || ciphertext.
func (s *TokenSealer) Seal(plaintext []byte) ([]byte, error) {
	aead := s.aeads[0]
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(out)
	return aead.Seal(out, out, plaintext, nil), nil
}

// Open decrypts what Seal produced with any configured key.
func (s *TokenSealer) Open(ciphertext []byte) ([]byte, error) {
	for _, aead := range s.aeads {
		n := aead.NonceSize()
		if len(ciphertext) < n+aead.Overhead() {
			return nil, errors.New("authn: token sealer: ciphertext too short")
		}
		if plain, err := aead.Open(nil, ciphertext[:n], ciphertext[n:], nil); err == nil {
			return plain, nil
		}
	}
	return nil, errors.New("authn: token sealer: no key opens this token")
}
