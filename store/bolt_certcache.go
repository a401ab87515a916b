package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// bucketCertificates holds the ACME certificate cache; it is created on
// the first write, so stores from before it need no migration.
var bucketCertificates = []byte("certificates")

// GetCertificateData returns a certificate cache entry or ErrNotFound.
func (b *Bolt) GetCertificateData(ctx context.Context, key string) ([]byte, error) {
	if err := validateCertificateEntry(key, nil); err != nil {
		return nil, err
	}
	var rec certificateRecord
	err := b.view(ctx, "get certificate", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketCertificates)
		if bk == nil {
			return ErrNotFound
		}
		found, err := getJSON(bk, []byte(key), &rec)
		if err == nil && !found {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return openCertificate(b.cfg.Sealer, rec)
}

// PutCertificateData creates or replaces a certificate cache entry.
func (b *Bolt) PutCertificateData(ctx context.Context, key string, data []byte) error {
	if err := validateCertificateEntry(key, data); err != nil {
		return err
	}
	rec, err := sealCertificate(b.cfg.Sealer, data)
	if err != nil {
		return err
	}
	return b.update(ctx, "put certificate", func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketCertificates)
		if err != nil {
			return err
		}
		return putJSON(bk, []byte(key), rec)
	})
}

// DeleteCertificateData removes a certificate cache entry.
func (b *Bolt) DeleteCertificateData(ctx context.Context, key string) error {
	if err := validateCertificateEntry(key, nil); err != nil {
		return err
	}
	return b.update(ctx, "delete certificate", func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bucketCertificates); bk != nil {
			return bk.Delete([]byte(key))
		}
		return nil
	})
}
