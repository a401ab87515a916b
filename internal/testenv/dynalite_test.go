package testenv

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dynamoCall posts one DynamoDB JSON API call. dynalite checks that a SigV4-shaped
// Authorization header and a date are present, not the signature.
func dynamoCall(endpoint, op, body string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/"+now.Format("20060102")+
		"/us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00")
	return (&http.Client{Timeout: 5 * time.Second}).Do(req)
}

func listTables(t *testing.T, endpoint string) []string {
	t.Helper()
	resp, err := dynamoCall(endpoint, "ListTables", "{}")
	if err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ListTables: %s", resp.Status)
	}
	var out struct{ TableNames []string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("ListTables response: %v", err)
	}
	return out.TableNames
}

func createTable(t *testing.T, endpoint, name string) {
	t.Helper()
	resp, err := dynamoCall(endpoint, "CreateTable", `{"TableName":"`+name+`",`+
		`"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],`+
		`"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}`)
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CreateTable: %s", resp.Status)
	}
}

func TestDynaliteOutageAndRestart(t *testing.T) {
	d := StartDynalite(t)
	if got := listTables(t, d.Endpoint); len(got) != 0 {
		t.Fatalf("fresh dynalite has tables %v", got)
	}
	createTable(t, d.Endpoint, "profiles")

	d.Stop()
	if resp, err := dynamoCall(d.Endpoint, "ListTables", "{}"); err == nil {
		resp.Body.Close()
		t.Fatal("stopped dynalite still answers")
	}

	d.Restart(t)
	if got := listTables(t, d.Endpoint); len(got) != 0 {
		t.Errorf("in-memory dynalite kept tables %v across a restart", got)
	}
}

func TestDynalitePersistAcrossRestart(t *testing.T) {
	d := StartDynaliteWith(t, DynaliteOptions{Persist: true, InstantTableState: true})
	createTable(t, d.Endpoint, "sessions")
	d.Restart(t)
	if got := listTables(t, d.Endpoint); len(got) != 1 || got[0] != "sessions" {
		t.Errorf("tables after restart = %v, want [sessions]", got)
	}
}
