package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	bolt "go.etcd.io/bbolt"

	"ztproxy/internal/testenv"
)

// Issue 19 (ACME): the certificate cache behaves the same on both stores,
// and seals its entries (they hold private keys) when a Sealer is set.
func testCertificateCache(t *testing.T, c CertificateCache, rawStored func(key string) []byte) {
	ctx := context.Background()
	if _, err := c.GetCertificateData(ctx, "ztp.example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of an absent entry: %v, want ErrNotFound", err)
	}
	secret := []byte("-----BEGIN EC PRIVATE KEY-----\nkey material\n-----END EC PRIVATE KEY-----\n")
	for _, data := range [][]byte{secret, append(secret, "and a chain"...)} {
		if err := c.PutCertificateData(ctx, "ztp.example.com", data); err != nil {
			t.Fatalf("put: %v", err)
		}
		got, err := c.GetCertificateData(ctx, "ztp.example.com")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get = %q, %v; want %q", got, err, data)
		}
	}
	if raw := rawStored("ztp.example.com"); raw == nil || bytes.Contains(raw, []byte("key material")) {
		t.Errorf("entry at rest is not sealed: %q", raw)
	}
	if err := c.PutCertificateData(ctx, "acme_account+key", []byte("account")); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteCertificateData(ctx, "ztp.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteCertificateData(ctx, "ztp.example.com"); err != nil {
		t.Errorf("deleting an absent entry: %v", err)
	}
	if _, err := c.GetCertificateData(ctx, "ztp.example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	if got, err := c.GetCertificateData(ctx, "acme_account+key"); err != nil || string(got) != "account" {
		t.Errorf("other entry after delete: %q, %v", got, err)
	}
	for _, bad := range []string{"", "../etc/passwd", "a b", strings.Repeat("x", 256), "é"} {
		if err := c.PutCertificateData(ctx, bad, []byte("x")); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
	if err := c.PutCertificateData(ctx, "big", make([]byte, MaxCertificateData+1)); err == nil {
		t.Error("oversized entry accepted")
	}
}

func TestBoltCertificateCache(t *testing.T) {
	b := openTestBolt(t, contractEnv{Clock: newFakeClock(), Sealer: newTestSealer(t)})
	if _, err := b.GetCertificateData(context.Background(), "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before the bucket exists: %v", err)
	}
	testCertificateCache(t, b, func(key string) (raw []byte) {
		b.db.View(func(tx *bolt.Tx) error {
			if bk := tx.Bucket(bucketCertificates); bk != nil {
				raw = bytes.Clone(bk.Get([]byte(key)))
			}
			return nil
		})
		return raw
	})
}

func TestDynamoCertificateCache(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: uniquePrefix(), Now: newFakeClock().Now, Sealer: newTestSealer(t)})
	createTestTables(t, d)
	testCertificateCache(t, d, func(key string) []byte {
		out, err := d.client.GetItem(context.Background(), &dynamodb.GetItemInput{
			TableName: aws.String(d.certificateTable()), Key: certificateKey(key),
		})
		if err != nil {
			t.Fatal(err)
		}
		return getB(out.Item, attrData)
	})
}
