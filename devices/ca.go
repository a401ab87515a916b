package devices

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"
)

// MaxCSRBytes bounds a certificate signing request, PEM or DER.
const MaxCSRBytes = 8 << 10

// clockSkew backdates NotBefore so that a peer whose clock runs a little
// behind accepts a fresh certificate.
const clockSkew = 5 * time.Minute

// ParseCSR parses a PKCS#10 certificate signing request (DER, or one PEM
// "CERTIFICATE REQUEST" block), checks its self-signature (proof that the
// sender holds the key) and returns its public key. Only the key is
// used: subject, SANs and extensions in the request are ignored, so a
// device cannot ask for another identity. Accepted keys: ECDSA P-256 or
// P-384, Ed25519, RSA of 2048 to 8192 bits.
func ParseCSR(data []byte) (crypto.PublicKey, error) {
	if len(data) == 0 || len(data) > MaxCSRBytes {
		return nil, &InputError{Field: "csr", Msg: fmt.Sprintf("must be 1 to %d bytes", MaxCSRBytes)}
	}
	der := data
	if block, rest := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE REQUEST" || len(block.Headers) != 0 || len(trimSpace(rest)) != 0 {
			return nil, &InputError{Field: "csr", Msg: "must be exactly one PEM CERTIFICATE REQUEST block"}
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, &InputError{Field: "csr", Msg: "not a PKCS#10 certificate request: " + err.Error()}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &InputError{Field: "csr", Msg: "its signature does not verify: " + err.Error()}
	}
	if err := checkDeviceKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr.PublicKey, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// checkDeviceKey accepts the key types and sizes device certificates may
// have.
func checkDeviceKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return &InputError{Field: "csr", Msg: "ECDSA keys must use P-256 or P-384"}
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n >= 2048 && n <= 8192 {
			return nil
		}
		return &InputError{Field: "csr", Msg: "RSA keys must have 2048 to 8192 bits"}
	}
	return &InputError{Field: "csr", Msg: fmt.Sprintf("unsupported key type %T", pub)}
}

// CA signs device certificates.
type CA struct {
	cert        *x509.Certificate
	key         crypto.Signer
	trustDomain string
}

// NewCA checks that cert is a CA whose key is key.
func NewCA(cert *x509.Certificate, key crypto.Signer, trustDomain string) (*CA, error) {
	if cert == nil || key == nil {
		return nil, errors.New("devices: a CA certificate and key are required")
	}
	if !cert.IsCA {
		return nil, errors.New("devices: the CA certificate is not a CA")
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("devices: the CA key does not match the CA certificate")
	}
	if err := checkTrustDomain(trustDomain); err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	return &CA{cert: cert, key: key, trustDomain: trustDomain}, nil
}

// Certificate is the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// issued is a freshly signed device certificate.
type issued struct {
	der         []byte
	fingerprint string
	notAfter    time.Time
}

// issue signs a client certificate for device id with pub: URI SAN
// spiffe://<trust domain>/device/<id>, client-auth EKU only, digital
// signature only, valid from now (less clockSkew) for lifetime but never
// past the CA's own expiry.
func (ca *CA) issue(pub crypto.PublicKey, id string, now time.Time, lifetime time.Duration) (issued, error) {
	uri, err := url.Parse(SPIFFEID(ca.trustDomain, id))
	if err != nil {
		return issued{}, fmt.Errorf("devices: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return issued{}, fmt.Errorf("devices: serial number: %w", err)
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !notAfter.After(now) {
		return issued{}, errors.New("devices: the device CA has expired")
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: id, Organization: []string{"ztproxy device"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		URIs:                  []*url.URL{uri},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, pub, ca.key)
	if err != nil {
		return issued{}, fmt.Errorf("devices: signing: %w", err)
	}
	sum := sha256.Sum256(der)
	return issued{der: der, fingerprint: hex.EncodeToString(sum[:]), notAfter: notAfter}, nil
}
