package store

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Session item attributes. Times are unix nanoseconds; ttl is the epoch
// second at which DynamoDB TTL may delete the item (= expires_at), so revoked
// sessions stay visible to every replica until they would have expired.
const (
	attrSessionID    = "id"
	attrUserID       = "user_id"
	attrIdP          = "idp"
	attrSID          = "sid"
	attrRefreshToken = "refresh_token" // B: sealed bytes, or plaintext without a Sealer
	attrSealed       = "sealed"
	attrIDToken      = "id_token"
	attrTokenExpiry  = "token_expiry"
	attrExpiresAt    = "expires_at"
	attrTTL          = "ttl"
	attrRevoked      = "revoked"
	attrRevokedAt    = "revoked_at"
)

func (d *Dynamo) sessionKey(id string) item { return item{attrSessionID: avS(id)} }

// PutSession creates a session; ErrExists if a live session has the id.
func (d *Dynamo) PutSession(ctx context.Context, rec SessionRecord) error {
	if err := validateSession(rec); err != nil {
		return err
	}
	token, sealed, err := sealToken(d.cfg.Sealer, rec.RefreshToken)
	if err != nil {
		return err
	}
	it := item{
		attrSessionID: avS(rec.ID), attrUserID: avS(rec.UserID),
		attrExpiresAt: avTime(rec.ExpiresAt), attrTTL: avN(ttlSeconds(rec.ExpiresAt)),
		attrRevoked: avBool(rec.Revoked), attrSealed: avBool(sealed),
	}
	putS(it, attrIdP, rec.IdP)
	putS(it, attrSID, rec.SID)
	if rec.SID != "" {
		it[attrIdPSID] = avS(sidKey(rec.IdP, rec.SID))
	}
	putS(it, attrIDToken, rec.IDToken)
	if token != nil {
		it[attrRefreshToken] = avB(token)
	}
	putTime(it, attrTokenExpiry, rec.TokenExpiry)
	putTime(it, attrRevokedAt, rec.RevokedAt)
	e := newExpr()
	// An expired item that TTL has not deleted yet does not hold its id.
	cond := "attribute_not_exists(" + e.n(attrSessionID) + ") OR " + e.n(attrExpiresAt) + " <= " + e.v(avTime(d.cfg.Now()))
	_, err = d.putItem(ctx, "sessions", &dynamodb.PutItemInput{
		TableName: aws.String(d.tables.sessions), Item: it, ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: e.namesOrNil(), ExpressionAttributeValues: e.valuesOrNil(),
	})
	if isConditionFailed(err) {
		return ErrExists
	}
	if err != nil {
		return wrapDynamo("put session", err)
	}
	return nil
}

// loadSessionItem reads a live session item; ErrNotFound when it is absent
// or expired (TTL deletion is lazy, so expiry is checked here).
func (d *Dynamo) loadSessionItem(ctx context.Context, id string, projection ...string) (item, error) {
	in := &dynamodb.GetItemInput{
		TableName: aws.String(d.tables.sessions), Key: d.sessionKey(id), ConsistentRead: aws.Bool(true),
	}
	if len(projection) > 0 {
		e := newExpr()
		p := ""
		for i, name := range projection {
			if i > 0 {
				p += ", "
			}
			p += e.n(name)
		}
		in.ProjectionExpression, in.ExpressionAttributeNames = aws.String(p), e.namesOrNil()
	}
	out, err := d.getItem(ctx, "sessions", in)
	if err != nil {
		return nil, wrapDynamo("get session", err)
	}
	if len(out.Item) == 0 || expired(getTime(out.Item, attrExpiresAt), d.cfg.Now()) {
		return nil, ErrNotFound
	}
	return out.Item, nil
}

// GetSession returns the session, revoked or not.
func (d *Dynamo) GetSession(ctx context.Context, id string) (SessionRecord, error) {
	it, err := d.loadSessionItem(ctx, id)
	if err != nil {
		return SessionRecord{}, err
	}
	token, err := openToken(d.cfg.Sealer, getB(it, attrRefreshToken), getBool(it, attrSealed))
	if err != nil {
		return SessionRecord{}, err
	}
	return SessionRecord{
		ID: getS(it, attrSessionID), UserID: getS(it, attrUserID), IdP: getS(it, attrIdP), SID: getS(it, attrSID),
		RefreshToken: token, IDToken: getS(it, attrIDToken),
		TokenExpiry: getTime(it, attrTokenExpiry), ExpiresAt: getTime(it, attrExpiresAt),
		Revoked: getBool(it, attrRevoked), RevokedAt: getTime(it, attrRevokedAt),
	}, nil
}

// RevokeSession marks a live session revoked with one conditional
// UpdateItem; if_not_exists keeps the first revocation time.
func (d *Dynamo) RevokeSession(ctx context.Context, id string, at time.Time) error {
	e := newExpr()
	upd := update([]string{
		e.n(attrRevoked) + " = " + e.v(avBool(true)),
		e.n(attrRevokedAt) + " = if_not_exists(" + e.n(attrRevokedAt) + ", " + e.v(avTime(at)) + ")",
	}, nil, nil)
	cond := "attribute_exists(" + e.n(attrSessionID) + ") AND " + e.n(attrExpiresAt) + " > " + e.v(avTime(d.cfg.Now()))
	_, err := d.updateItem(ctx, "sessions", &dynamodb.UpdateItemInput{
		TableName: aws.String(d.tables.sessions), Key: d.sessionKey(id),
		UpdateExpression: aws.String(upd), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: e.namesOrNil(), ExpressionAttributeValues: e.valuesOrNil(),
	})
	if isConditionFailed(err) {
		return ErrNotFound
	}
	if err != nil {
		return wrapDynamo("revoke session", err)
	}
	return nil
}

// UpdateSessionTokens stores refreshed tokens, conditional on the session
// being live and not revoked, so a refresh racing a logout on another replica
// cannot resurrect the session.
func (d *Dynamo) UpdateSessionTokens(ctx context.Context, id, refreshToken, idToken string, tokenExpiry time.Time) error {
	token, sealed, err := sealToken(d.cfg.Sealer, refreshToken)
	if err != nil {
		return err
	}
	e := newExpr()
	var set, remove []string
	if tokenExpiry.IsZero() {
		remove = append(remove, e.n(attrTokenExpiry))
	} else {
		set = append(set, e.n(attrTokenExpiry)+" = "+e.v(avTime(tokenExpiry)))
	}
	if refreshToken != "" {
		set = append(set, e.n(attrRefreshToken)+" = "+e.v(avB(token)), e.n(attrSealed)+" = "+e.v(avBool(sealed)))
	}
	if idToken != "" {
		set = append(set, e.n(attrIDToken)+" = "+e.v(avS(idToken)))
	}
	cond := "attribute_exists(" + e.n(attrSessionID) + ") AND " + e.n(attrExpiresAt) + " > " + e.v(avTime(d.cfg.Now())) +
		" AND " + e.n(attrRevoked) + " = " + e.v(avBool(false))
	_, err = d.updateItem(ctx, "sessions", &dynamodb.UpdateItemInput{
		TableName: aws.String(d.tables.sessions), Key: d.sessionKey(id),
		UpdateExpression: aws.String(update(set, nil, remove)), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: e.namesOrNil(), ExpressionAttributeValues: e.valuesOrNil(),
	})
	if isConditionFailed(err) {
		// Rare path: one read tells "gone" from "revoked".
		it, lerr := d.loadSessionItem(ctx, id, attrRevoked, attrExpiresAt)
		if lerr != nil {
			return lerr
		}
		if getBool(it, attrRevoked) {
			return ErrRevoked
		}
		return wrapDynamo("update session tokens", err)
	}
	if err != nil {
		return wrapDynamo("update session tokens", err)
	}
	return nil
}

// IsRevoked is true for revoked, expired and unknown sessions. It reads only
// the attributes it needs.
func (d *Dynamo) IsRevoked(ctx context.Context, id string) (bool, error) {
	it, err := d.loadSessionItem(ctx, id, attrRevoked, attrExpiresAt)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return getBool(it, attrRevoked), nil
}
