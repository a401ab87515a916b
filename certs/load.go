package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// fileSet is the raw content of the configured files. It is read once per
// load so that change detection and parsing see exactly the same bytes.
type fileSet struct {
	cert, key, clientCA, deviceCA []byte
}

// digest identifies the content of all files together.
func (f fileSet) digest() [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]byte{f.cert, f.key, f.clientCA, f.deviceCA} {
		// Length-prefix each part so that bytes cannot move between files
		// without changing the digest.
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// readFiles reads every configured file and reports all read failures.
func readFiles(cfg *Config) (fileSet, error) {
	var files fileSet
	var errs []error
	var err error
	if cfg.ACME == nil {
		if files.cert, err = readFile("tls.cert_file "+cfg.CertFile, cfg.CertFile); err != nil {
			errs = append(errs, err)
		}
		if files.key, err = readFile("tls.key_file "+cfg.KeyFile, cfg.KeyFile); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.ClientCAFile != "" {
		if files.clientCA, err = readFile("tls.client_ca_file "+cfg.ClientCAFile, cfg.ClientCAFile); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.DeviceCAFile != "" {
		if files.deviceCA, err = readFile("devices.ca_cert_file "+cfg.DeviceCAFile, cfg.DeviceCAFile); err != nil {
			errs = append(errs, err)
		}
	}
	return files, errors.Join(errs...)
}

// readFile reads path and prefixes any error with where, dropping the
// duplicate path that *fs.PathError would add.
func readFile(where, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return data, nil
}

// parseCertificates returns every CERTIFICATE block in data, in order. Other
// PEM blocks are skipped so that a combined cert-and-key file works.
func parseCertificates(where string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", where, len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found", where)
	}
	return certs, nil
}

// parsePrivateKey returns the single private key in data.
func parsePrivateKey(where string, data []byte) (crypto.Signer, error) {
	var key crypto.Signer
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if key != nil {
			return nil, fmt.Errorf("%s: more than one private key found", where)
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
			return nil, fmt.Errorf("%s: encrypted private keys are not supported", where)
		}
		parsed, err := parseKeyBlock(block)
		if err != nil {
			// The error comes from the ASN.1 parser and never contains
			// key bytes.
			return nil, fmt.Errorf("%s: %s: %w", where, block.Type, err)
		}
		key = parsed
	}
	if key == nil {
		return nil, fmt.Errorf("%s: no PEM private key found", where)
	}
	return key, nil
}

// parseKeyBlock decodes one PEM private key block of a type TLS can sign with.
func parseKeyBlock(block *pem.Block) (crypto.Signer, error) {
	var parsed any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, errors.New("unsupported PEM block type")
	}
	if err != nil {
		return nil, err
	}
	switch k := parsed.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T", parsed)
	}
}

// publicKeysEqual reports whether a certificate's public key is key's.
func publicKeysEqual(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}

// loadServerCertificate parses the server chain and key and checks that
// they belong together.
func loadServerCertificate(cfg *Config, files fileSet) (*tls.Certificate, error) {
	certWhere := "tls.cert_file " + cfg.CertFile
	keyWhere := "tls.key_file " + cfg.KeyFile
	chain, certErr := parseCertificates(certWhere, files.cert)
	key, keyErr := parsePrivateKey(keyWhere, files.key)
	if err := errors.Join(certErr, keyErr); err != nil {
		return nil, err
	}
	if !publicKeysEqual(chain[0], key) {
		for i, c := range chain[1:] {
			if publicKeysEqual(c, key) {
				return nil, fmt.Errorf("%s: certificate %d matches %s but the leaf must come first", certWhere, i+2, keyWhere)
			}
		}
		return nil, fmt.Errorf("%s and %s: key does not match certificate", certWhere, keyWhere)
	}
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return &tls.Certificate{Certificate: raw, PrivateKey: key, Leaf: chain[0]}, nil
}

// LoadCertPool reads a PEM bundle of CA certificates, for example the custom
// CA of an upstream. Errors name the file.
func LoadCertPool(path string) (*x509.CertPool, error) {
	data, err := readFile(path, path)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertificates(path, data)
	if err != nil {
		return nil, err
	}
	return poolOf(certs), nil
}

// poolOf returns a pool holding certs.
func poolOf(certs []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}
