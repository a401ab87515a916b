package store

import (
	"context"
	"errors"
	"fmt"
)

// CertificateCache keeps ACME state — the account key and each host's
// certificate chain with its private key — where every replica finds it
// (issue 19: replicas share certificates instead of each ordering its
// own). Keys are autocert's cache keys (a host name, "<host>+rsa",
// "acme_account+key"). Both Bolt and Dynamo implement it; entries are
// sealed with the store's Sealer when one is configured, because they
// hold private keys.
type CertificateCache interface {
	// GetCertificateData returns the entry under key, or ErrNotFound.
	GetCertificateData(ctx context.Context, key string) ([]byte, error)
	// PutCertificateData creates or replaces the entry under key.
	PutCertificateData(ctx context.Context, key string, data []byte) error
	// DeleteCertificateData removes the entry; removing an absent one
	// succeeds.
	DeleteCertificateData(ctx context.Context, key string) error
}

var (
	_ CertificateCache = (*Bolt)(nil)
	_ CertificateCache = (*Dynamo)(nil)
)

// MaxCertificateData bounds one entry: a chain of a few certificates and
// a key is a few KiB; DynamoDB items end at 400 KB.
const MaxCertificateData = 64 << 10

// validateCertificateEntry checks a cache key (printable ASCII, no
// separators a path or an expression could read) and the data size.
func validateCertificateEntry(key string, data []byte) error {
	if key == "" || len(key) > 255 {
		return fmt.Errorf("store: certificate cache key of %d bytes", len(key))
	}
	for _, c := range key {
		if c <= ' ' || c > '~' || c == '/' || c == '\\' {
			return errors.New("store: certificate cache key has a character outside [!-~] or a slash")
		}
	}
	if len(data) > MaxCertificateData {
		return fmt.Errorf("store: certificate cache entry of %d bytes exceeds %d", len(data), MaxCertificateData)
	}
	return nil
}

// certificateRecord is an entry at rest: the data, sealed when the store
// has a Sealer.
type certificateRecord struct {
	Data   []byte `json:"data"`
	Sealed bool   `json:"sealed,omitempty"`
}

func sealCertificate(s Sealer, data []byte) (certificateRecord, error) {
	sealed, ok, err := sealToken(s, string(data))
	if err != nil {
		return certificateRecord{}, fmt.Errorf("store: sealing certificate cache entry: %w", err)
	}
	return certificateRecord{Data: sealed, Sealed: ok}, nil
}

func openCertificate(s Sealer, rec certificateRecord) ([]byte, error) {
	plain, err := openToken(s, rec.Data, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("store: opening certificate cache entry: %w", err)
	}
	return []byte(plain), nil
}
