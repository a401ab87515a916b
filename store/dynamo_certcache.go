package store

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Certificate cache items (table <prefix>certificates, key name): data
// (B) and sealed (BOOL). Certificates are renewed by ACME long before
// they expire, so the items carry no ttl.
const (
	attrCertName   = "name"
	attrCertSealed = "sealed"
)

// certificateTable is the table name; it sits beside tableNames so the
// certificate cache stays an addition to the store.
func (d *Dynamo) certificateTable() string { return d.cfg.TablePrefix + "certificates" }

func certificateKey(key string) item { return item{attrCertName: avS(key)} }

// GetCertificateData returns a certificate cache entry or ErrNotFound.
func (d *Dynamo) GetCertificateData(ctx context.Context, key string) ([]byte, error) {
	if err := validateCertificateEntry(key, nil); err != nil {
		return nil, err
	}
	out, err := d.getItem(ctx, "certificates", &dynamodb.GetItemInput{
		TableName: aws.String(d.certificateTable()), Key: certificateKey(key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, wrapDynamo("get certificate", err)
	}
	if len(out.Item) == 0 {
		return nil, ErrNotFound
	}
	return openCertificate(d.cfg.Sealer, certificateRecord{Data: getB(out.Item, attrData), Sealed: getBool(out.Item, attrCertSealed)})
}

// PutCertificateData creates or replaces a certificate cache entry with
// one PutItem.
func (d *Dynamo) PutCertificateData(ctx context.Context, key string, data []byte) error {
	if err := validateCertificateEntry(key, data); err != nil {
		return err
	}
	rec, err := sealCertificate(d.cfg.Sealer, data)
	if err != nil {
		return err
	}
	it := certificateKey(key)
	it[attrData] = avB(rec.Data)
	it[attrCertSealed] = avBool(rec.Sealed)
	if _, err := d.putItem(ctx, "certificates", &dynamodb.PutItemInput{TableName: aws.String(d.certificateTable()), Item: it}); err != nil {
		return wrapDynamo("put certificate", err)
	}
	return nil
}

// DeleteCertificateData removes a certificate cache entry.
func (d *Dynamo) DeleteCertificateData(ctx context.Context, key string) error {
	if err := validateCertificateEntry(key, nil); err != nil {
		return err
	}
	_, err := d.deleteItem(ctx, "certificates", &dynamodb.DeleteItemInput{TableName: aws.String(d.certificateTable()), Key: certificateKey(key)})
	if err != nil {
		return wrapDynamo("delete certificate", err)
	}
	return nil
}
