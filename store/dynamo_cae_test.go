package store

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ztproxy/internal/testenv"
)

// TestCreateTablesAddsSessionIndexes: issue 17, a sessions table made by
// an older version has no user or sid index; `store init` adds them
// (UpdateTable), and sessions stored before can then be found and revoked
// by user. dynalite accepts the UpdateTable but never creates the index:
// there, `store init` must say so instead of waiting forever.
func TestCreateTablesAddsSessionIndexes(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	clk := newFakeClock()
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: uniquePrefix(), Now: clk.Now})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := d.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(d.tables.sessions), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrSessionID), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrSessionID), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.waitActive(ctx, d.tables.sessions); err != nil {
		t.Fatal(err)
	}
	rec := sampleSession(clk, "old-1")
	if err := d.PutSession(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RevokeUserSessions(ctx, rec.UserID, clk.Now()); err == nil {
		t.Fatal("a table without the index answered the index query")
	}
	if err := d.CreateTables(ctx); err != nil {
		if strings.Contains(err.Error(), "did not add index user-index") {
			t.Logf("as expected on dynalite: %v", err)
			return
		}
		t.Fatalf("CreateTables on an old sessions table: %v", err)
	}
	waitIndexed(t, func() bool {
		ids, err := d.RevokeUserSessions(ctx, rec.UserID, clk.Now())
		return err == nil && slices.Equal(ids, []string{"old-1"})
	})
}
