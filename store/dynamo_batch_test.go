package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"ztproxy/internal/testenv"
)

// Issue 14.5: with DynamoDB hung (SIGSTOP), an UpdateItem times out on the
// client, is applied when the server wakes up, and the resent batch was
// counted again (12 requests stored as 20–26). A batch resent with its
// Writer and Batch applies once; the control without them shows that the
// pause really makes the store apply a write the caller gave up on.
func TestDynamoBatchAppliedOnceAcrossAHang(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{
		TablePrefix: uniquePrefix(), MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond, HTTPTimeout: 400 * time.Millisecond,
	})
	createTestTables(t, d)
	ctx := context.Background()
	batch := time.Now().UnixMilli()
	for _, tc := range []struct {
		name   string
		writer string
		want   int64
	}{
		{"with batch ids", "w1", 1 + 5},
		{"control: without batch ids", "", 0}, // 1+5 and at least one more 5
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "u-" + strings.ReplaceAll(tc.name, " ", "")
			obs := func(n int64) Observation {
				batch++
				o := Observation{UserID: user, Requests: n, LastSeen: time.Now()}
				if tc.writer != "" {
					o.Writer, o.Batch = tc.writer, batch
				}
				return o
			}
			if err := d.ApplyObservation(ctx, obs(1)); err != nil {
				t.Fatal(err)
			}
			hung := obs(5)
			dl.Pause(t)
			callCtx, cancel := context.WithTimeout(ctx, time.Second)
			err := d.ApplyObservation(callCtx, hung)
			cancel()
			if err == nil {
				t.Fatal("a write to a paused DynamoDB succeeded")
			}
			dl.Resume(t)
			// The write the client gave up on lands once the server runs.
			waitForRequests(t, d, user, 6)
			// The caller, not knowing, sends the same batch again.
			if err := d.ApplyObservation(ctx, hung); err != nil {
				t.Fatalf("resend: %v", err)
			}
			p, err := d.GetProfile(ctx, user)
			switch {
			case err != nil:
				t.Fatal(err)
			case tc.want == 0 && p.RequestCount < 1+5+5:
				t.Fatalf("control: requests = %d; the hang did not make a write count twice", p.RequestCount)
			case tc.want != 0 && p.RequestCount != tc.want:
				t.Fatalf("requests = %d, want %d", p.RequestCount, tc.want)
			}
		})
	}
}

func waitForRequests(t *testing.T, d *Dynamo, user string, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := d.GetProfile(context.Background(), user)
		if err == nil && p.RequestCount >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the timed-out write never landed: %d requests, %v", p.RequestCount, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Issue 14.5: during an outage the SDK's client-side retry quota ran dry
// after a few dozen calls and every later call failed at its first attempt
// ("retry quota exceeded"), not after the documented attempts.
func TestDynamoOutageKeepsEveryAttempt(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: uniquePrefix(), MaxAttempts: 5, MaxBackoff: time.Millisecond})
	dl.Stop()
	for i := range 60 { // 60 calls × 4 retries × 5 tokens: well past the 500-token quota
		_, err := d.GetProfile(context.Background(), "u")
		var quota ratelimit.QuotaExceededError
		var attempts *retry.MaxAttemptsError
		if errors.As(err, &quota) {
			t.Fatalf("call %d: %v", i, err)
		}
		if !errors.As(err, &attempts) || attempts.Attempt != 5 {
			t.Fatalf("call %d: want 5 attempts, got %v", i, err)
		}
	}
}

// A batch large enough to split into several UpdateItems is deduplicated
// chunk by chunk: a resend after a partial write adds only what is missing.
// Records of writers gone for a week are pruned.
func TestDynamoBatchChunksAndStaleWriters(t *testing.T) {
	dl := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{InstantTableState: true})
	d := newTestDynamo(t, dl.Endpoint, DynamoConfig{TablePrefix: uniquePrefix()})
	createTestTables(t, d)
	ctx := context.Background()
	now := time.Now()
	big := Observation{UserID: "u", Requests: 3, Writer: "w1", Batch: now.UnixMilli()}
	for h := range big.HourCounts {
		big.HourCounts[h] = 1
	}
	for range 3 {
		if err := d.ApplyObservation(ctx, big); err != nil {
			t.Fatal(err)
		}
	}
	p, err := d.GetProfile(ctx, "u")
	if err != nil || p.RequestCount != 3 || p.HourHistogram[0] != 1 || p.HourHistogram[167] != 1 {
		t.Fatalf("after three sends of one batch: requests %d, hours %v/%v, %v", p.RequestCount, p.HourHistogram[0], p.HourHistogram[167], err)
	}
	old := Observation{UserID: "u", Requests: 1, Writer: "gone", Batch: now.Add(-8 * 24 * time.Hour).UnixMilli()}
	if err := d.ApplyObservation(ctx, old); err != nil {
		t.Fatal(err)
	}
	grow := Observation{UserID: "u", Requests: 1, Writer: "w1", Batch: now.UnixMilli() + 1, Networks: map[string]int64{"192.0.2.0/24": now.Unix()}}
	if err := d.ApplyObservation(ctx, grow); err != nil {
		t.Fatal(err)
	}
	it, err := d.getItem(ctx, "profiles", &dynamodb.GetItemInput{TableName: aws.String(d.tables.profiles), Key: userKey("u"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := it.Item[prefixWriter+"gone"]; ok {
		t.Error("a writer gone for 8 days was not pruned")
	}
	if _, ok := it.Item[prefixWriter+"w1"]; !ok {
		t.Error("the live writer's record was pruned")
	}
}
