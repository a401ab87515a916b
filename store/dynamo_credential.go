package store

import (
	"context"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Credential item attributes (table <prefix>credentials, hash key user_id,
// range key credential_id as binary, so one Query lists a user's keys).
const (
	attrCredentialID = "credential_id"
	attrPublicKey    = "public_key"
	attrSignCount    = "sign_count"
	attrAAGUID       = "aaguid"
	attrTransports   = "transports"
	attrName         = "name"
	attrCreatedAt    = "created_at"
	attrLastUsed     = "last_used"
)

func credKey(userID string, id []byte) item {
	return item{attrUserID: avS(userID), attrCredentialID: avB(id)}
}

// PutCredential registers a credential; ErrExists for a known id.
func (d *Dynamo) PutCredential(ctx context.Context, c Credential) error {
	if err := validateCredential(c); err != nil {
		return err
	}
	it := credKey(c.UserID, c.ID)
	it[attrPublicKey] = avB(c.PublicKey)
	it[attrSignCount] = avN(int64(c.SignCount))
	if len(c.AAGUID) > 0 {
		it[attrAAGUID] = avB(c.AAGUID)
	}
	if len(c.Transports) > 0 {
		l := make([]types.AttributeValue, len(c.Transports))
		for i, tr := range c.Transports {
			l[i] = avS(tr)
		}
		it[attrTransports] = &types.AttributeValueMemberL{Value: l}
	}
	putS(it, attrName, c.Name)
	putTime(it, attrCreatedAt, c.CreatedAt)
	putTime(it, attrLastUsed, c.LastUsed)
	e := newExpr()
	_, err := d.putItem(ctx, "credentials", &dynamodb.PutItemInput{
		TableName: aws.String(d.tables.credentials), Item: it,
		ConditionExpression:      aws.String("attribute_not_exists(" + e.n(attrCredentialID) + ")"),
		ExpressionAttributeNames: e.namesOrNil(),
	})
	if isConditionFailed(err) {
		return ErrExists
	}
	if err != nil {
		return wrapDynamo("put credential", err)
	}
	return nil
}

// ListCredentials queries the user's credentials, ordered by creation.
func (d *Dynamo) ListCredentials(ctx context.Context, userID string) ([]Credential, error) {
	if err := validateUserID(userID); err != nil {
		return nil, err
	}
	var out []Credential
	var startKey item
	for {
		e := newExpr()
		res, err := d.query(ctx, "credentials", &dynamodb.QueryInput{
			TableName:                 aws.String(d.tables.credentials),
			KeyConditionExpression:    aws.String(e.n(attrUserID) + " = " + e.v(avS(userID))),
			ExpressionAttributeNames:  e.namesOrNil(),
			ExpressionAttributeValues: e.valuesOrNil(),
			ConsistentRead:            aws.Bool(true),
			ExclusiveStartKey:         startKey,
		})
		if err != nil {
			return nil, wrapDynamo("list credentials", err)
		}
		for _, it := range res.Items {
			out = append(out, credentialFrom(it))
		}
		if len(res.LastEvaluatedKey) == 0 {
			break
		}
		startKey = res.LastEvaluatedKey
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

func credentialFrom(it item) Credential {
	return Credential{
		UserID: getS(it, attrUserID), ID: getB(it, attrCredentialID), PublicKey: getB(it, attrPublicKey),
		SignCount: uint32(getN(it, attrSignCount)), AAGUID: getB(it, attrAAGUID),
		Transports: getStrings(it, attrTransports), Name: getS(it, attrName),
		CreatedAt: getTime(it, attrCreatedAt), LastUsed: getTime(it, attrLastUsed),
	}
}

// DeleteCredential deletes one credential; ErrNotFound when absent.
func (d *Dynamo) DeleteCredential(ctx context.Context, userID string, id []byte) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	e := newExpr()
	_, err := d.deleteItem(ctx, "credentials", &dynamodb.DeleteItemInput{
		TableName: aws.String(d.tables.credentials), Key: credKey(userID, id),
		ConditionExpression:      aws.String("attribute_exists(" + e.n(attrCredentialID) + ")"),
		ExpressionAttributeNames: e.namesOrNil(),
	})
	if isConditionFailed(err) {
		return ErrNotFound
	}
	if err != nil {
		return wrapDynamo("delete credential", err)
	}
	return nil
}

// UpdateSignCount stores a grown counter with one conditional UpdateItem, so
// two replicas verifying the same (cloned) authenticator cannot both accept
// the same counter value.
func (d *Dynamo) UpdateSignCount(ctx context.Context, userID string, id []byte, newCount uint32) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	e := newExpr()
	cond := "attribute_exists(" + e.n(attrCredentialID) + ") AND "
	if newCount == 0 {
		cond += e.n(attrSignCount) + " = " + e.v(avN(0))
	} else {
		cond += e.n(attrSignCount) + " < " + e.v(avN(int64(newCount)))
	}
	upd := update([]string{
		e.n(attrSignCount) + " = " + e.v(avN(int64(newCount))),
		e.n(attrLastUsed) + " = " + e.v(avTime(d.cfg.Now())),
	}, nil, nil)
	_, err := d.updateItem(ctx, "credentials", &dynamodb.UpdateItemInput{
		TableName: aws.String(d.tables.credentials), Key: credKey(userID, id),
		UpdateExpression: aws.String(upd), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: e.namesOrNil(), ExpressionAttributeValues: e.valuesOrNil(),
	})
	if isConditionFailed(err) {
		out, gerr := d.getItem(ctx, "credentials", &dynamodb.GetItemInput{
			TableName: aws.String(d.tables.credentials), Key: credKey(userID, id), ConsistentRead: aws.Bool(true),
		})
		if gerr != nil {
			return wrapDynamo("update sign count", gerr)
		}
		if len(out.Item) == 0 {
			return ErrNotFound
		}
		return ErrSignCountRegression
	}
	if err != nil {
		return wrapDynamo("update sign count", err)
	}
	return nil
}
