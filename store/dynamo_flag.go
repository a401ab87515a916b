package store

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Flag item attributes (table <prefix>flags, key user_id). A flag with an
// expiry carries ttl (epoch seconds) for DynamoDB TTL.
const (
	attrLevel  = "level"
	attrReason = "reason"
	attrSetBy  = "set_by"
	attrSetAt  = "set_at"
)

func userKey(userID string) item { return item{attrUserID: avS(userID)} }

// SetFlag creates or replaces the user's flag with one PutItem.
func (d *Dynamo) SetFlag(ctx context.Context, f Flag) error {
	if err := validateFlag(f); err != nil {
		return err
	}
	it := item{attrUserID: avS(f.UserID), attrLevel: avS(f.Level)}
	putS(it, attrReason, f.Reason)
	putS(it, attrSetBy, f.SetBy)
	putTime(it, attrSetAt, f.SetAt)
	if !f.ExpiresAt.IsZero() {
		it[attrExpiresAt] = avTime(f.ExpiresAt)
		it[attrTTL] = avN(ttlSeconds(f.ExpiresAt))
	}
	_, err := d.putItem(ctx, "flags", &dynamodb.PutItemInput{TableName: aws.String(d.tables.flags), Item: it})
	if err != nil {
		return wrapDynamo("set flag", err)
	}
	return nil
}

// ClearFlag deletes the user's flag; deleting an absent flag succeeds.
func (d *Dynamo) ClearFlag(ctx context.Context, userID string) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	_, err := d.deleteItem(ctx, "flags", &dynamodb.DeleteItemInput{TableName: aws.String(d.tables.flags), Key: userKey(userID)})
	if err != nil {
		return wrapDynamo("clear flag", err)
	}
	return nil
}

// GetFlag returns the user's unexpired flag or ErrNotFound.
func (d *Dynamo) GetFlag(ctx context.Context, userID string) (Flag, error) {
	if err := validateUserID(userID); err != nil {
		return Flag{}, err
	}
	out, err := d.getItem(ctx, "flags", &dynamodb.GetItemInput{
		TableName: aws.String(d.tables.flags), Key: userKey(userID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Flag{}, wrapDynamo("get flag", err)
	}
	it := out.Item
	if len(it) == 0 || expired(getTime(it, attrExpiresAt), d.cfg.Now()) {
		return Flag{}, ErrNotFound
	}
	return flagFrom(it), nil
}

func flagFrom(it item) Flag {
	return Flag{
		UserID: getS(it, attrUserID), Level: getS(it, attrLevel), Reason: getS(it, attrReason),
		SetBy: getS(it, attrSetBy), SetAt: getTime(it, attrSetAt), ExpiresAt: getTime(it, attrExpiresAt),
	}
}
