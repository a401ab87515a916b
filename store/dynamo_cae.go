package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Continuous access evaluation on DynamoDB. Sessions carry idp_sid (IdP
// name and sid) for the sparse sid index; the user index is on user_id.
// Both project keys only and are eventually consistent: a session created
// a moment before a revocation may be missed by it (see the docs). The
// changes table holds the feed (pk "feed", sk = Seq) and one-time keys
// (pk "once:<key>"), both expiring through ttl; a server without TTL
// (dynalite) keeps them, and reads filter by time anyway.
const (
	attrIdPSID       = "idp_sid"
	attrPK           = "pk"
	attrSK           = "sk"
	attrChange       = "change"
	indexSessionUser = "user-index"
	indexSessionSID  = "sid-index"
	feedPartition    = "feed"
)

// RevokeUserSessions revokes every live session of userID.
func (d *Dynamo) RevokeUserSessions(ctx context.Context, userID string, at time.Time) ([]string, error) {
	if err := validateUserID(userID); err != nil {
		return nil, err
	}
	return d.revokeIndexed(ctx, indexSessionUser, attrUserID, userID, at)
}

// RevokeIdPSessions revokes every live session of the IdP session sid.
func (d *Dynamo) RevokeIdPSessions(ctx context.Context, idp, sid string, at time.Time) ([]string, error) {
	if idp == "" || sid == "" {
		return nil, invalid("idp and sid are required")
	}
	return d.revokeIndexed(ctx, indexSessionSID, attrIdPSID, sidKey(idp, sid), at)
}

// revokeIndexed queries index for value and revokes each live session
// with RevokeSession (one conditional UpdateItem each).
func (d *Dynamo) revokeIndexed(ctx context.Context, index, attr, value string, at time.Time) ([]string, error) {
	var revoked []string
	var startKey item
	for {
		e := newExpr()
		res, err := d.query(ctx, "sessions", &dynamodb.QueryInput{
			TableName: aws.String(d.tables.sessions), IndexName: aws.String(index),
			KeyConditionExpression:    aws.String(e.n(attr) + " = " + e.v(avS(value))),
			ExpressionAttributeNames:  e.namesOrNil(),
			ExpressionAttributeValues: e.valuesOrNil(),
			ExclusiveStartKey:         startKey,
		})
		if err != nil {
			return revoked, wrapDynamo("find sessions", err)
		}
		for _, it := range res.Items {
			id := getS(it, attrSessionID)
			revokedNow, err := d.revokeLive(ctx, id, at)
			if err != nil {
				return revoked, err
			}
			if revokedNow {
				revoked = append(revoked, id)
			}
		}
		if len(res.LastEvaluatedKey) == 0 {
			return revoked, nil
		}
		startKey = res.LastEvaluatedKey
	}
}

// revokeLive revokes a live, unrevoked session; false when it was gone or
// already revoked.
func (d *Dynamo) revokeLive(ctx context.Context, id string, at time.Time) (bool, error) {
	e := newExpr()
	upd := update([]string{e.n(attrRevoked) + " = " + e.v(avBool(true)), e.n(attrRevokedAt) + " = " + e.v(avTime(at))}, nil, nil)
	cond := "attribute_exists(" + e.n(attrSessionID) + ") AND " + e.n(attrExpiresAt) + " > " + e.v(avTime(d.cfg.Now())) +
		" AND " + e.n(attrRevoked) + " = " + e.v(avBool(false))
	_, err := d.updateItem(ctx, "sessions", &dynamodb.UpdateItemInput{
		TableName: aws.String(d.tables.sessions), Key: d.sessionKey(id),
		UpdateExpression: aws.String(upd), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: e.namesOrNil(), ExpressionAttributeValues: e.valuesOrNil(),
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, wrapDynamo("revoke session", err)
	}
	return true, nil
}

// PublishChange appends c to the feed with one PutItem.
func (d *Dynamo) PublishChange(ctx context.Context, c Change) error {
	if err := validateChange(c); err != nil {
		return err
	}
	c.At = d.cfg.Now()
	c.Seq = newChangeSeq(c.At)
	doc, err := json.Marshal(c)
	if err != nil {
		return err
	}
	it := item{attrPK: avS(feedPartition), attrSK: avS(c.Seq), attrChange: avB(doc),
		attrTTL: avN(ttlSeconds(c.At.Add(ChangeRetention)))}
	if _, err := d.putItem(ctx, "changes", &dynamodb.PutItemInput{TableName: aws.String(d.tables.changes), Item: it}); err != nil {
		return wrapDynamo("publish change", err)
	}
	return nil
}

// ChangesSince reads the feed from since with one consistent Query.
func (d *Dynamo) ChangesSince(ctx context.Context, since time.Time) ([]Change, error) {
	e := newExpr()
	res, err := d.query(ctx, "changes", &dynamodb.QueryInput{
		TableName:                 aws.String(d.tables.changes),
		KeyConditionExpression:    aws.String(e.n(attrPK) + " = " + e.v(avS(feedPartition)) + " AND " + e.n(attrSK) + " >= " + e.v(avS(changeSeqPrefix(since)))),
		ExpressionAttributeNames:  e.namesOrNil(),
		ExpressionAttributeValues: e.valuesOrNil(),
		ConsistentRead:            aws.Bool(true),
		Limit:                     aws.Int32(MaxChangesPerRead),
	})
	if err != nil {
		return nil, wrapDynamo("read changes", err)
	}
	out := make([]Change, 0, len(res.Items))
	for _, it := range res.Items {
		var c Change
		if json.Unmarshal(getB(it, attrChange), &c) == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// ClaimOnce records key with a conditional PutItem; ErrExists on replay.
func (d *Dynamo) ClaimOnce(ctx context.Context, key string, until time.Time) error {
	if err := validateOnceKey(key); err != nil {
		return err
	}
	e := newExpr()
	cond := "attribute_not_exists(" + e.n(attrPK) + ") OR " + e.n(attrExpiresAt) + " <= " + e.v(avTime(d.cfg.Now()))
	_, err := d.putItem(ctx, "changes", &dynamodb.PutItemInput{
		TableName: aws.String(d.tables.changes),
		Item: item{attrPK: avS("once:" + key), attrSK: avS("once"), attrExpiresAt: avTime(until),
			attrTTL: avN(ttlSeconds(until))},
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: e.namesOrNil(), ExpressionAttributeValues: e.valuesOrNil(),
	})
	if isConditionFailed(err) {
		return ErrExists
	}
	if err != nil {
		return wrapDynamo("claim one-time key", err)
	}
	return nil
}

// ListFlags scans the flags table.
func (d *Dynamo) ListFlags(ctx context.Context) ([]Flag, error) {
	var out []Flag
	var startKey item
	now := d.cfg.Now()
	for {
		res, err := d.scan(ctx, "flags", &dynamodb.ScanInput{TableName: aws.String(d.tables.flags), ExclusiveStartKey: startKey, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, wrapDynamo("list flags", err)
		}
		for _, it := range res.Items {
			if f := flagFrom(it); !expired(f.ExpiresAt, now) {
				out = append(out, f)
			}
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		startKey = res.LastEvaluatedKey
	}
}
