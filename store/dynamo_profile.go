package store

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Profile item design (table <prefix>profiles, key user_id). Every mergeable
// fact is its own top-level attribute, so a single UpdateItem can touch any
// of them without a prior read and without the "document path does not
// exist" error that nested map paths raise on a new item:
//
//	requests, failed_auth, version   N, updated with ADD (commutative)
//	h:<0..167>                       N, hour-of-week buckets, ADD
//	net:<prefix>, ua:<family>,       N, unix second last seen, SET
//	dev:<device id>
//	last_seen (unix ns), last_location
//	email                            S, verified address, SET when it changed
//
//	w:<writer>                   N, the last batch token a writer applied
//
// ADD and per-key SET from two replicas never overwrite each other's
// counts or keys. ADD is not idempotent, so every UpdateItem of an
// observation with a Batch carries the condition w:<writer> < token and
// sets w:<writer> = token (token = Batch×batchStride + chunk index): a
// resend of a write DynamoDB applied late, after the caller's timeout,
// fails the condition and counts as done (issue 14.5). Conditions and
// single-item updates are all this needs, which every DynamoDB-compatible
// server has (no transactions, no TTL). last_seen only moves forward: the update carries the
// condition last_seen <= :new, and when it fails (another replica wrote a
// later time) the update is retried once without those two attributes. Map
// timestamps are last-writer-wins, off by at most one flush interval.
const (
	attrRequests     = "requests"
	attrFailedAuth   = "failed_auth"
	attrVersion      = "version"
	attrLastSeen     = "last_seen"
	attrLastLocation = "last_location"
	attrEmail        = "email"
	prefixNetwork    = "net:"
	prefixUserAgent  = "ua:"
	prefixDevice     = "dev:"
	prefixHour       = "h:"
	prefixWriter     = "w:"
)

// batchStride separates the tokens of one batch's chunks (an observation
// splits into at most a few chunks of opsPerUpdate operations).
const batchStride = 1024

// writerRetention is how long a writer's last token is kept after its last
// batch; pruneEvery is how often (1 in n batches) a write asks for the
// item back to prune records of writers gone that long.
const (
	writerRetention = 7 * 24 * time.Hour
	pruneEvery      = 64
)

// opsPerUpdate keeps each update expression well under DynamoDB's 4 KB
// expression limit (a clause is at most ~20 bytes with placeholders).
const opsPerUpdate = 120

// attrOp is one SET or ADD of a profile attribute.
type attrOp struct {
	add  bool
	name string
	val  types.AttributeValue
}

// GetProfile reads the user's profile with one consistent GetItem.
func (d *Dynamo) GetProfile(ctx context.Context, userID string) (Profile, error) {
	if err := validateUserID(userID); err != nil {
		return Profile{}, err
	}
	out, err := d.getItem(ctx, "profiles", &dynamodb.GetItemInput{
		TableName: aws.String(d.tables.profiles), Key: userKey(userID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Profile{}, wrapDynamo("get profile", err)
	}
	if len(out.Item) == 0 {
		return Profile{}, ErrNotFound
	}
	return profileFrom(out.Item), nil
}

func profileFrom(it item) Profile {
	p := Profile{
		UserID: getS(it, attrUserID), RequestCount: getN(it, attrRequests), FailedAuth: getN(it, attrFailedAuth),
		Version: getN(it, attrVersion), LastSeen: getTime(it, attrLastSeen), LastLocation: getS(it, attrLastLocation),
		Email:    getS(it, attrEmail),
		Networks: map[string]int64{}, UserAgents: map[string]int64{}, Devices: map[string]int64{},
	}
	for name, av := range it {
		switch {
		case strings.HasPrefix(name, prefixNetwork):
			p.Networks[name[len(prefixNetwork):]] = int64(getF(av))
		case strings.HasPrefix(name, prefixUserAgent):
			p.UserAgents[name[len(prefixUserAgent):]] = int64(getF(av))
		case strings.HasPrefix(name, prefixDevice):
			p.Devices[name[len(prefixDevice):]] = int64(getF(av))
		case strings.HasPrefix(name, prefixHour):
			if h, err := strconv.Atoi(name[len(prefixHour):]); err == nil && h >= 0 && h < len(p.HourHistogram) {
				p.HourHistogram[h] = getF(av)
			}
		}
	}
	return p
}

// ApplyObservation merges obs with one UpdateItem in the common case (more
// only for very large observations, or when last_seen moved backwards), plus
// one pruning UpdateItem when a map grew past MaxMapEntries.
func (d *Dynamo) ApplyObservation(ctx context.Context, obs Observation) error {
	if err := validateObservation(obs); err != nil {
		return err
	}
	head := []attrOp{
		{add: true, name: attrVersion, val: avN(1)},
	}
	if obs.Requests != 0 {
		head = append(head, attrOp{add: true, name: attrRequests, val: avN(obs.Requests)})
	}
	if obs.FailedAuth != 0 {
		head = append(head, attrOp{add: true, name: attrFailedAuth, val: avN(obs.FailedAuth)})
	}
	if obs.Email != "" {
		head = append(head, attrOp{name: attrEmail, val: avS(obs.Email)})
	}
	ops := head
	for h, c := range obs.HourCounts {
		if c != 0 {
			ops = append(ops, attrOp{add: true, name: prefixHour + strconv.Itoa(h), val: avF(c)})
		}
	}
	for _, fam := range []struct {
		prefix string
		m      map[string]int64
	}{{prefixNetwork, obs.Networks}, {prefixUserAgent, obs.UserAgents}, {prefixDevice, obs.Devices}} {
		for k, seen := range fam.m {
			ops = append(ops, attrOp{name: fam.prefix + k, val: avN(seen)})
		}
	}
	grew := len(obs.Networks)+len(obs.UserAgents)+len(obs.Devices) > 0
	prune := grew || obs.Batch%pruneEvery == 1 // now and then, for stale writers
	if (len(ops)+opsPerUpdate-1)/opsPerUpdate > batchStride {
		return invalid("observation too large: %d operations", len(ops))
	}
	var last item
	for start := 0; start < len(ops); start += opsPerUpdate {
		chunk := ops[start:min(start+opsPerUpdate, len(ops))]
		final := start+opsPerUpdate >= len(ops)
		var err error
		last, err = d.applyChunk(ctx, obs, chunk, start/opsPerUpdate, final && prune)
		if err != nil {
			return err
		}
	}
	if prune {
		return d.pruneProfile(ctx, obs.UserID, last)
	}
	return nil
}

// applyChunk runs one UpdateItem. The first chunk (index 0) also moves
// last_seen forward (see the item design above); returnItem asks for the
// whole item so that map sizes can be checked without another read. A chunk
// of a batch this writer already applied is skipped: nil item, nil error.
func (d *Dynamo) applyChunk(ctx context.Context, obs Observation, ops []attrOp, index int, returnItem bool) (item, error) {
	withLastSeen := index == 0 && !obs.LastSeen.IsZero()
	for {
		e := newExpr()
		var set, add, conds []string
		for _, op := range ops {
			if op.add {
				add = append(add, e.n(op.name)+" "+e.v(op.val))
			} else {
				set = append(set, e.n(op.name)+" = "+e.v(op.val))
			}
		}
		if obs.Batch != 0 {
			w, token := e.n(prefixWriter+obs.Writer), e.v(avN(obs.Batch*batchStride+int64(index)))
			set = append(set, w+" = "+token)
			conds = append(conds, "(attribute_not_exists("+w+") OR "+w+" < "+token+")")
		}
		if withLastSeen {
			seen := e.v(avTime(obs.LastSeen))
			set = append(set, e.n(attrLastSeen)+" = "+seen)
			if obs.LastLocation != "" {
				set = append(set, e.n(attrLastLocation)+" = "+e.v(avS(obs.LastLocation)))
			}
			conds = append(conds, "(attribute_not_exists("+e.n(attrLastSeen)+") OR "+e.n(attrLastSeen)+" <= "+seen+")")
		}
		in := &dynamodb.UpdateItemInput{TableName: aws.String(d.tables.profiles), Key: userKey(obs.UserID)}
		if len(conds) > 0 {
			in.ConditionExpression = aws.String(strings.Join(conds, " AND "))
		}
		in.UpdateExpression = aws.String(update(set, add, nil))
		in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.namesOrNil(), e.valuesOrNil()
		if returnItem {
			in.ReturnValues = types.ReturnValueAllNew
		}
		out, err := d.updateItem(ctx, "profiles", in)
		switch {
		case withLastSeen && isConditionFailed(err):
			withLastSeen = false // a later last_seen is stored, or a resend: try without
			continue
		case obs.Batch != 0 && isConditionFailed(err):
			return nil, nil // this writer applied the chunk before
		case err != nil:
			return nil, wrapDynamo("apply observation", err)
		}
		return out.Attributes, nil
	}
}

// pruneProfile removes the least recently seen map entries beyond
// MaxMapEntries. Each removal is conditional on the entry still holding the
// time we saw, so an entry another replica refreshed meanwhile survives; a
// failed condition skips this round and the next observation prunes again.
func (d *Dynamo) pruneProfile(ctx context.Context, userID string, it item) error {
	if len(it) == 0 {
		return nil
	}
	p := profileFrom(it)
	var victims []string
	for _, fam := range []struct {
		prefix string
		m      map[string]int64
	}{{prefixNetwork, p.Networks}, {prefixUserAgent, p.UserAgents}, {prefixDevice, p.Devices}} {
		for _, k := range pruneVictims(fam.m, d.cfg.MaxMapEntries) {
			victims = append(victims, fam.prefix+k)
		}
	}
	victims = append(victims, staleWriters(it, d.cfg.Now().Add(-writerRetention))...)
	for start := 0; start < len(victims); start += opsPerUpdate / 2 {
		e := newExpr()
		var remove, conds []string
		for _, name := range victims[start:min(start+opsPerUpdate/2, len(victims))] {
			remove = append(remove, e.n(name))
			conds = append(conds, e.n(name)+" = "+e.v(it[name]))
		}
		_, err := d.updateItem(ctx, "profiles", &dynamodb.UpdateItemInput{
			TableName: aws.String(d.tables.profiles), Key: userKey(userID),
			UpdateExpression:         aws.String(update(nil, nil, remove)),
			ConditionExpression:      aws.String(strings.Join(conds, " AND ")),
			ExpressionAttributeNames: e.namesOrNil(), ExpressionAttributeValues: e.valuesOrNil(),
		})
		if err != nil && !isConditionFailed(err) {
			return wrapDynamo("prune profile", err)
		}
	}
	return nil
}

// staleWriters returns the w:<writer> attributes whose last batch is older
// than before (batch numbers are unix milliseconds or later; see
// Observation.Batch).
func staleWriters(it item, before time.Time) []string {
	var out []string
	limit := before.UnixMilli() * batchStride
	for name, av := range it {
		if strings.HasPrefix(name, prefixWriter) && int64(getF(av)) < limit {
			out = append(out, name)
		}
	}
	return out
}

// FindUsersByEmail scans the profiles table for the verified address
// email, reading only user ids and addresses. A scan reads the whole table
// (its read capacity grows with the number of users): it is for an
// operator's occasional command, never for the request path, and needs
// dynamodb:Scan, which the proxy's own IAM statement does not grant.
// DynamoDB compares strings exactly, so the case-insensitive match is
// made here.
func (d *Dynamo) FindUsersByEmail(ctx context.Context, email string) ([]string, error) {
	var ids []string
	in := &dynamodb.ScanInput{
		TableName:                aws.String(d.tables.profiles),
		ProjectionExpression:     aws.String("#u, #e"),
		FilterExpression:         aws.String("attribute_exists(#e)"),
		ExpressionAttributeNames: map[string]string{"#u": attrUserID, "#e": attrEmail},
	}
	for {
		sctx, end := d.span(ctx, "profiles.Scan")
		start := time.Now()
		out, err := d.client.Scan(sctx, in)
		end(err)
		d.observe("profiles.Scan", start, err)
		if err != nil {
			return nil, wrapDynamo("find users by email", err)
		}
		for _, it := range out.Items {
			if sameEmail(getS(it, attrEmail), email) && len(ids) < MaxUsersByEmail {
				ids = append(ids, getS(it, attrUserID))
			}
		}
		if len(out.LastEvaluatedKey) == 0 || len(ids) >= MaxUsersByEmail {
			return ids, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
