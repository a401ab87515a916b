package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"ztproxy/internal/testenv"
)

// callCounter records OnCall reports.
type callCounter struct {
	mu  sync.Mutex
	ops map[string]int
}

func (c *callCounter) OnCall(op string, _ time.Duration, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = map[string]int{}
	}
	c.ops[op]++
}

// take returns the calls since the last take.
func (c *callCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

// TestDynamoCallCounts pins down the API usage: one call per operation in
// the common case, and how many in the rarer ones.
func TestDynamoCallCounts(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	clk := newFakeClock()
	var calls callCounter
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: uniquePrefix(), Now: clk.Now, MaxMapEntries: 3, OnCall: calls.OnCall})
	createTestTables(t, d)
	calls.take()
	ctx := context.Background()
	user := "https://idp.example#gina"
	obs := func(lastSeen time.Time, nets ...string) Observation {
		o := Observation{UserID: user, Requests: 10, LastSeen: lastSeen, Networks: map[string]int64{}}
		o.HourCounts[3] = 10
		for i, n := range nets {
			o.Networks[n] = lastSeen.Unix() + int64(i)
		}
		return o
	}
	big := obs(clk.Now().Add(3 * time.Minute))
	for i := 0; i < 168; i++ {
		big.HourCounts[i] = 1
	}
	big.Devices = map[string]int64{}
	for i := 0; i < 200; i++ { // 370 attributes: split to stay under the 4 KB expression limit
		big.Devices[fmt.Sprintf("device-%03d", i)] = int64(i)
	}
	steps := []struct {
		name string
		run  func() error
		want map[string]int
	}{
		{"new profile, no maps", func() error { return d.ApplyObservation(ctx, obs(clk.Now())) }, map[string]int{"profiles.UpdateItem": 1}},
		{"maps under the bound", func() error { return d.ApplyObservation(ctx, obs(clk.Now().Add(time.Minute), "a", "b", "c")) }, map[string]int{"profiles.UpdateItem": 1}},
		{"map over the bound → prune", func() error { return d.ApplyObservation(ctx, obs(clk.Now().Add(2*time.Minute), "d")) }, map[string]int{"profiles.UpdateItem": 2}},
		{"late last_seen → retry without it", func() error { return d.ApplyObservation(ctx, obs(clk.Now())) }, map[string]int{"profiles.UpdateItem": 2}},
		{"read profile", func() error { _, err := d.GetProfile(ctx, user); return err }, map[string]int{"profiles.GetItem": 1}},
		{"put session", func() error { return d.PutSession(ctx, sampleSession(clk, "s")) }, map[string]int{"sessions.PutItem": 1}},
		{"revocation check", func() error { _, err := d.IsRevoked(ctx, "s"); return err }, map[string]int{"sessions.GetItem": 1}},
		{"refresh tokens", func() error { return d.UpdateSessionTokens(ctx, "s", "r", "i", clk.Now()) }, map[string]int{"sessions.UpdateItem": 1}},
		{"revoke", func() error { return d.RevokeSession(ctx, "s", clk.Now()) }, map[string]int{"sessions.UpdateItem": 1}},
		{"refresh after revoke → classify", func() error {
			if err := d.UpdateSessionTokens(ctx, "s", "r", "i", clk.Now()); !errors.Is(err, ErrRevoked) {
				return fmt.Errorf("got %v, want ErrRevoked", err)
			}
			return nil
		}, map[string]int{"sessions.UpdateItem": 1, "sessions.GetItem": 1}},
		{"flag", func() error { return d.SetFlag(ctx, Flag{UserID: user, Level: FlagWatch}) }, map[string]int{"flags.PutItem": 1}},
		{"sign count", func() error {
			if err := d.PutCredential(ctx, Credential{UserID: user, ID: []byte("c"), PublicKey: []byte("k")}); err != nil {
				return err
			}
			return d.UpdateSignCount(ctx, user, []byte("c"), 1)
		}, map[string]int{"credentials.PutItem": 1, "credentials.UpdateItem": 1}},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := calls.take(); fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Errorf("%s: calls %v, want %v", st.name, got, st.want)
		}
	}
	if err := d.ApplyObservation(ctx, big); err != nil {
		t.Fatalf("large observation: %v", err)
	}
	if got := calls.take()["profiles.UpdateItem"]; got < 3 {
		t.Errorf("large observation used %d UpdateItem calls; want it split and pruned", got)
	} else {
		t.Logf("observation with 368 attributes + pruning of 197: %d UpdateItem calls", got)
	}
	p, _ := d.GetProfile(ctx, user)
	calls.take()
	if len(p.Devices) != 3 || p.Devices["device-199"] != 199 {
		t.Errorf("devices after pruning = %v, want the 3 most recent", p.Devices)
	}
	if p.RequestCount != 50 || p.HourHistogram[3] != 41 || p.HourHistogram[100] != 1 || len(p.Networks) != 3 {
		t.Errorf("profile after all steps: requests %d h3 %v h100 %v nets %v", p.RequestCount, p.HourHistogram[3], p.HourHistogram[100], p.Networks)
	}

	// The revocation cache in front of DynamoDB: 1,000 checks, one read.
	cache := NewRevocationCache(d, RevocationCacheConfig{Now: clk.Now})
	for i := 0; i < 1000; i++ {
		if _, err := cache.IsRevoked(ctx, "s"); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.take(); got["sessions.GetItem"] != 1 || len(got) != 1 {
		t.Errorf("1,000 cached revocation checks made calls %v, want one sessions.GetItem", got)
	}
}

// TestRevocationAcrossReplicas: a session revoked through replica A is
// refused by replica B once B's cache entry is older than the TTL.
func TestRevocationAcrossReplicas(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	clk := newFakeClock()
	prefix := uniquePrefix()
	a := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: prefix, Now: clk.Now})
	b := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: prefix, Now: clk.Now})
	createTestTables(t, a)
	ctx := context.Background()
	if err := a.PutSession(ctx, sampleSession(clk, "s")); err != nil {
		t.Fatal(err)
	}
	cacheB := NewRevocationCache(b, RevocationCacheConfig{TTL: 10 * time.Second, Now: clk.Now})
	if revoked, err := cacheB.IsRevoked(ctx, "s"); err != nil || revoked {
		t.Fatalf("B before revoke = %v, %v", revoked, err)
	}
	if err := a.RevokeSession(ctx, "s", clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(9 * time.Second)
	if revoked, _ := cacheB.IsRevoked(ctx, "s"); revoked {
		t.Log("B saw the revocation before its TTL (allowed)")
	}
	clk.Advance(time.Second)
	if revoked, err := cacheB.IsRevoked(ctx, "s"); err != nil || !revoked {
		t.Errorf("B after TTL = %v, %v; want revoked", revoked, err)
	}
}

func TestIsThrottle(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("store: x: %w", &types.ProvisionedThroughputExceededException{Message: new(string)}), true},
		{fmt.Errorf("wrapped: %w", &smithy.GenericAPIError{Code: "ThrottlingException"}), true},
		{&types.RequestLimitExceeded{}, true},
		{&smithy.GenericAPIError{Code: "ValidationException"}, false},
		{&types.ConditionalCheckFailedException{}, false},
		{errors.New("connection refused"), false},
		{nil, false},
	} {
		if got := IsThrottle(tc.err); got != tc.want {
			t.Errorf("IsThrottle(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestTableDefinitionsAndIAMPolicy(t *testing.T) {
	defs := TableDefinitions("ztp-")
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
	}
	if got := strings.Join(names, ","); got != "ztp-sessions,ztp-profiles,ztp-flags,ztp-credentials,ztp-devices,ztp-certificates,ztp-changes" {
		t.Errorf("tables = %s", got)
	}
	policy := IAMPolicy("ztp-", "eu-west-1", "123456789012")
	var doc struct {
		Statement []struct {
			Sid      string
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil || len(doc.Statement) != 3 {
		t.Fatalf("policy is not three statements of JSON: %v\n%s", err, policy)
	}
	run := strings.Join(doc.Statement[0].Action, " ")
	for _, forbidden := range []string{"*", "Scan", "CreateTable", "DeleteTable", "BatchWriteItem"} {
		if strings.Contains(run, forbidden) {
			t.Errorf("runtime statement grants %s: %s", forbidden, run)
		}
	}
	if !strings.Contains(strings.Join(doc.Statement[1].Action, " "), "dynamodb:CreateTable") {
		t.Error("init statement lacks CreateTable")
	}
	// Issue 17: the proxy itself may scan the flags table only (the
	// compromised set), nothing else.
	if s := doc.Statement[2]; strings.Join(s.Action, " ") != "dynamodb:Scan" || len(s.Resource) != 1 ||
		s.Resource[0] != "arn:aws:dynamodb:eu-west-1:123456789012:table/ztp-flags" {
		t.Errorf("flags statement = %+v", s)
	}
	if r := doc.Statement[0].Resource; len(r) != 9 || r[0] != "arn:aws:dynamodb:eu-west-1:123456789012:table/ztp-sessions" ||
		r[1] != "arn:aws:dynamodb:eu-west-1:123456789012:table/ztp-sessions/index/*" ||
		r[6] != "arn:aws:dynamodb:eu-west-1:123456789012:table/ztp-devices/index/*" ||
		r[7] != "arn:aws:dynamodb:eu-west-1:123456789012:table/ztp-certificates" ||
		r[8] != "arn:aws:dynamodb:eu-west-1:123456789012:table/ztp-changes" {
		t.Errorf("resources = %v", r)
	}
}
