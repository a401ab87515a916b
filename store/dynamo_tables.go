package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// KeyAttr is one key attribute of a table: its name, DynamoDB scalar type
// ("S" or "B") and role ("HASH" or "RANGE").
type KeyAttr struct {
	Name, Type, Role string
}

// TableDef describes one table, for `ztproxy store init` and for generated
// CloudFormation and documentation.
type TableDef struct {
	// Kind is the data kind: sessions, profiles, flags or credentials.
	Kind string
	// Name is the full table name, prefix included.
	Name string
	Keys []KeyAttr
	// TTLAttribute is the numeric epoch-seconds attribute to enable DynamoDB
	// TTL on; empty when the table's items do not expire.
	TTLAttribute string
	// Indexes are global secondary indexes (projecting every attribute).
	Indexes []IndexDef
}

// IndexDef is one global secondary index of a table.
type IndexDef struct {
	Name string
	Keys []KeyAttr
	// KeysOnly projects only the keys (the session indexes, so that
	// sealed refresh tokens are not copied into them).
	KeysOnly bool
}

// TableDefinitions returns the six tables of a deployment. All use
// on-demand (PAY_PER_REQUEST) billing.
func TableDefinitions(prefix string) []TableDef {
	n := namesFor(prefix)
	return []TableDef{
		{Kind: "sessions", Name: n.sessions, Keys: []KeyAttr{{attrSessionID, "S", "HASH"}}, TTLAttribute: attrTTL,
			Indexes: []IndexDef{
				{Name: indexSessionUser, Keys: []KeyAttr{{attrUserID, "S", "HASH"}}, KeysOnly: true},
				{Name: indexSessionSID, Keys: []KeyAttr{{attrIdPSID, "S", "HASH"}}, KeysOnly: true},
			}},
		{Kind: "profiles", Name: n.profiles, Keys: []KeyAttr{{attrUserID, "S", "HASH"}}},
		{Kind: "flags", Name: n.flags, Keys: []KeyAttr{{attrUserID, "S", "HASH"}}, TTLAttribute: attrTTL},
		{Kind: "credentials", Name: n.credentials, Keys: []KeyAttr{
			{attrUserID, "S", "HASH"}, {attrCredentialID, "B", "RANGE"},
		}},
		{Kind: "devices", Name: n.devices, Keys: []KeyAttr{{attrDeviceID, "S", "HASH"}},
			Indexes: []IndexDef{{Name: indexDeviceOwner, Keys: []KeyAttr{{attrOwner, "S", "HASH"}}}}},
		// The ACME certificate cache (tls.acme), shared by the replicas.
		{Kind: "certificates", Name: prefix + "certificates", Keys: []KeyAttr{{attrCertName, "S", "HASH"}}},
		{Kind: "changes", Name: n.changes, Keys: []KeyAttr{{attrPK, "S", "HASH"}, {attrSK, "S", "RANGE"}}, TTLAttribute: attrTTL},
	}
}

// CreateTables creates the tables that do not exist yet, waits until all are
// ACTIVE and then tries to enable TTL. It is idempotent. Servers without
// UpdateTimeToLive (local emulators) are tolerated: reads filter expired
// items anyway, TTL only reclaims space.
func (d *Dynamo) CreateTables(ctx context.Context) error {
	for _, def := range TableDefinitions(d.cfg.TablePrefix) {
		if err := d.createTable(ctx, def); err != nil {
			return err
		}
	}
	for _, def := range TableDefinitions(d.cfg.TablePrefix) {
		if err := d.waitActive(ctx, def.Name); err != nil {
			return err
		}
		if def.TTLAttribute != "" {
			if err := d.enableTTL(ctx, def); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Dynamo) createTable(ctx context.Context, def TableDef) error {
	in := &dynamodb.CreateTableInput{TableName: aws.String(def.Name), BillingMode: types.BillingModePayPerRequest}
	in.KeySchema = keySchema(def.Keys)
	defined := map[string]bool{}
	keys := def.Keys
	for _, idx := range def.Indexes {
		keys = append(keys[:len(keys):len(keys)], idx.Keys...)
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsiOf(idx))
	}
	for _, k := range keys {
		if !defined[k.Name] {
			defined[k.Name] = true
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
				AttributeName: aws.String(k.Name), AttributeType: types.ScalarAttributeType(k.Type),
			})
		}
	}
	start := time.Now()
	_, err := d.client.CreateTable(ctx, in)
	d.observe(def.Kind+".CreateTable", start, err)
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return wrapDynamo("create table "+def.Name, err)
	}
	if err != nil && len(def.Indexes) > 0 {
		return d.ensureIndexes(ctx, def)
	}
	return nil
}

func gsiOf(idx IndexDef) types.GlobalSecondaryIndex {
	proj := types.ProjectionTypeAll
	if idx.KeysOnly {
		proj = types.ProjectionTypeKeysOnly
	}
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(idx.Name), KeySchema: keySchema(idx.Keys),
		Projection: &types.Projection{ProjectionType: proj},
	}
}

// ensureIndexes adds the indexes an existing table lacks (tables made by an
// older version: the session indexes came with continuous access
// evaluation), one UpdateTable each, waiting for each to become ACTIVE.
func (d *Dynamo) ensureIndexes(ctx context.Context, def TableDef) error {
	for _, idx := range def.Indexes {
		asked := false
		for {
			start := time.Now()
			out, err := d.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(def.Name)})
			d.observe("tables.DescribeTable", start, err)
			if err != nil {
				return wrapDynamo("describe table "+def.Name, err)
			}
			status, found := indexStatus(out.Table, idx.Name)
			if found && status == types.IndexStatusActive {
				break
			}
			if !found && out.Table.TableStatus == types.TableStatusActive {
				if asked {
					// Accepted but not begun, with the table idle: local
					// emulators (dynalite) ignore index creation.
					return fmt.Errorf("store: %s: the server did not add index %s; create the table anew (local emulators cannot add indexes)", def.Name, idx.Name)
				}
				if err := d.createIndex(ctx, def.Name, idx); err != nil {
					return err
				}
				asked = true
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("store: waiting for index %s of %s: %w", idx.Name, def.Name, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func indexStatus(t *types.TableDescription, name string) (types.IndexStatus, bool) {
	if t == nil {
		return "", false
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) == name {
			return g.IndexStatus, true
		}
	}
	return "", false
}

func (d *Dynamo) createIndex(ctx context.Context, table string, idx IndexDef) error {
	var defs []types.AttributeDefinition
	for _, k := range idx.Keys {
		defs = append(defs, types.AttributeDefinition{AttributeName: aws.String(k.Name), AttributeType: types.ScalarAttributeType(k.Type)})
	}
	g := gsiOf(idx)
	create := &types.CreateGlobalSecondaryIndexAction{IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection}
	update := func() error {
		start := time.Now()
		_, err := d.client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName: aws.String(table), AttributeDefinitions: defs,
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: create}},
		})
		d.observe("tables.UpdateTable", start, err)
		return err
	}
	err := update()
	var apiErr smithy.APIError
	if err != nil && errors.As(err, &apiErr) && strings.Contains(apiErr.ErrorMessage(), "provisionedThroughput") {
		// Local emulators that predate on-demand billing (dynalite)
		// insist on a throughput for a new index; real DynamoDB refuses
		// one on an on-demand table, so it is only sent on this retry.
		create.ProvisionedThroughput = &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(1), WriteCapacityUnits: aws.Int64(1)}
		err = update()
	}
	if err != nil {
		return wrapDynamo("add index "+idx.Name+" to "+table, err)
	}
	return nil
}

func keySchema(keys []KeyAttr) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, len(keys))
	for i, k := range keys {
		out[i] = types.KeySchemaElement{AttributeName: aws.String(k.Name), KeyType: types.KeyType(k.Role)}
	}
	return out
}

// waitActive polls DescribeTable until the table is ACTIVE or ctx ends.
func (d *Dynamo) waitActive(ctx context.Context, name string) error {
	delay := 100 * time.Millisecond
	for {
		start := time.Now()
		out, err := d.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		d.observe("tables.DescribeTable", start, err)
		if err != nil {
			return wrapDynamo("describe table "+name, err)
		}
		if out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for table %s to become ACTIVE: %w", name, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (d *Dynamo) enableTTL(ctx context.Context, def TableDef) error {
	start := time.Now()
	_, err := d.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(def.Name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(def.TTLAttribute), Enabled: aws.Bool(true),
		},
	})
	d.observe(def.Kind+".UpdateTimeToLive", start, err)
	var apiErr smithy.APIError
	if err != nil && errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "UnknownOperationException": // local emulator without TTL
			return nil
		case "ValidationException":
			if strings.Contains(apiErr.ErrorMessage(), "already enabled") {
				return nil
			}
		}
	}
	if err != nil {
		return wrapDynamo("enable TTL on "+def.Name, err)
	}
	return nil
}

// IAMPolicy returns a least-privilege IAM policy document for the proxy:
// item-level access to its five tables (and the devices table's owner
// index), plus a separate statement with what only the operator's commands
// need: the table-management actions of `ztproxy store init`, the profile
// scan that finds a user by email address (`ztproxy risk flag
// alice@example.com`), and the devices scan of `ztproxy devices list` and
// `import`. Grant that one to the operator, not to the running proxy.
func IAMPolicy(prefix, region, account string) string {
	var arns []string
	for _, def := range TableDefinitions(prefix) {
		arns = append(arns, fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", region, account, def.Name))
		if len(def.Indexes) > 0 {
			arns = append(arns, fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/index/*", region, account, def.Name))
		}
	}
	type statement struct {
		Sid      string
		Effect   string
		Action   []string
		Resource []string
	}
	doc := struct {
		Version   string
		Statement []statement
	}{
		Version: "2012-10-17",
		Statement: []statement{
			{
				Sid: "ZtproxyStateReadWrite", Effect: "Allow", Resource: arns,
				Action: []string{
					"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
					"dynamodb:DeleteItem", "dynamodb:Query",
				},
			},
			{
				Sid: "ZtproxyStoreInit", Effect: "Allow", Resource: arns,
				Action: []string{
					"dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTable",
					"dynamodb:UpdateTimeToLive", "dynamodb:DescribeTimeToLive", "dynamodb:Scan",
				},
			},
			{
				// The replicas load the compromised set from the (small)
				// flags table at start and every few minutes.
				Sid: "ZtproxyFlagsList", Effect: "Allow", Action: []string{"dynamodb:Scan"},
				Resource: []string{fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%sflags", region, account, prefix)},
			},
		},
	}
	out, _ := json.MarshalIndent(doc, "", "  ")
	return string(out)
}
