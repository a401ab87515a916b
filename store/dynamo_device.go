package store

import (
	"context"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Device item attributes (table <prefix>devices, hash key device_id, global
// secondary index owner-index on owner). The document is one binary
// attribute; updates are a PutItem conditioned on the version read, so two
// replicas updating one device cannot lose a write.
const (
	attrDeviceID = "device_id"
	attrOwner    = "owner"

	attrData         = "data"
	indexDeviceOwner = "owner-index"
)

func deviceItem(d DeviceRecord) item {
	return item{attrDeviceID: avS(d.ID), attrOwner: avS(d.Owner), attrVersion: avN(d.Version), attrData: avB(d.Data)}
}

func deviceFrom(it item) DeviceRecord {
	return DeviceRecord{ID: getS(it, attrDeviceID), Owner: getS(it, attrOwner), Version: getN(it, attrVersion), Data: getB(it, attrData)}
}

// CreateDevice stores a new device with version 1; ErrExists for a taken id.
func (d *Dynamo) CreateDevice(ctx context.Context, dev DeviceRecord) error {
	if err := validateDevice(dev); err != nil {
		return err
	}
	dev.Version = 1
	e := newExpr()
	_, err := d.putItem(ctx, "devices", &dynamodb.PutItemInput{
		TableName: aws.String(d.tables.devices), Item: deviceItem(dev),
		ConditionExpression:      aws.String("attribute_not_exists(" + e.n(attrDeviceID) + ")"),
		ExpressionAttributeNames: e.namesOrNil(),
	})
	if isConditionFailed(err) {
		return ErrExists
	}
	if err != nil {
		return wrapDynamo("create device", err)
	}
	return nil
}

// GetDevice reads the device consistently, or returns ErrNotFound.
func (d *Dynamo) GetDevice(ctx context.Context, id string) (DeviceRecord, error) {
	out, err := d.getItem(ctx, "devices", &dynamodb.GetItemInput{
		TableName: aws.String(d.tables.devices), Key: item{attrDeviceID: avS(id)}, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return DeviceRecord{}, wrapDynamo("get device", err)
	}
	if len(out.Item) == 0 {
		return DeviceRecord{}, ErrNotFound
	}
	return deviceFrom(out.Item), nil
}

// UpdateDevice replaces the device if its stored version and owner are
// still those of dev; a failed condition is ErrNotFound when the device is
// gone, else ErrConflict.
func (d *Dynamo) UpdateDevice(ctx context.Context, dev DeviceRecord) error {
	if err := validateDevice(dev); err != nil {
		return err
	}
	next := dev
	next.Version++
	e := newExpr()
	cond := e.n(attrVersion) + " = " + e.v(avN(dev.Version)) + " AND " + e.n(attrOwner) + " = " + e.v(avS(dev.Owner))
	_, err := d.putItem(ctx, "devices", &dynamodb.PutItemInput{
		TableName: aws.String(d.tables.devices), Item: deviceItem(next),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: e.namesOrNil(), ExpressionAttributeValues: e.valuesOrNil(),
	})
	if isConditionFailed(err) {
		if _, gerr := d.GetDevice(ctx, dev.ID); gerr != nil {
			return gerr
		}
		return ErrConflict
	}
	if err != nil {
		return wrapDynamo("update device "+strconv.Quote(dev.ID), err)
	}
	return nil
}

// ListDevices queries the owner index, or scans the table for owner "".
func (d *Dynamo) ListDevices(ctx context.Context, owner string) ([]DeviceRecord, error) {
	var out []DeviceRecord
	var startKey item
	for {
		var items []item
		var last item
		if owner == "" {
			res, err := d.scan(ctx, "devices", &dynamodb.ScanInput{TableName: aws.String(d.tables.devices), ExclusiveStartKey: startKey})
			if err != nil {
				return nil, wrapDynamo("list devices", err)
			}
			items, last = res.Items, res.LastEvaluatedKey
		} else {
			e := newExpr()
			res, err := d.query(ctx, "devices", &dynamodb.QueryInput{
				TableName: aws.String(d.tables.devices), IndexName: aws.String(indexDeviceOwner),
				KeyConditionExpression:    aws.String(e.n(attrOwner) + " = " + e.v(avS(owner))),
				ExpressionAttributeNames:  e.namesOrNil(),
				ExpressionAttributeValues: e.valuesOrNil(),
				ExclusiveStartKey:         startKey,
			})
			if err != nil {
				return nil, wrapDynamo("list devices", err)
			}
			items, last = res.Items, res.LastEvaluatedKey
		}
		for _, it := range items {
			out = append(out, deviceFrom(it))
		}
		if len(last) == 0 {
			break
		}
		startKey = last
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
