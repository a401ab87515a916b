package awscreds_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"ztproxy/awscreds"
)

// BenchmarkCredentialsCached measures the hot path: a request whose
// credentials are cached (budget: 5 µs/op).
func BenchmarkCredentialsCached(b *testing.B) {
	e := newEnv(b, nil)
	req := awscreds.Request{Role: "analyst", Principal: user("alice"), RiskLevel: "low", Route: "data", DeviceID: "laptop-1"}
	e.get(b, req)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.minter.Credentials(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	if e.sts.Calls("AssumeRole") != 1 {
		b.Fatal("benchmark left the cache")
	}
}

// BenchmarkSign1KiB measures SigV4 re-signing of a request with a 1 KiB
// body (budget: 20 µs/op).
func BenchmarkSign1KiB(b *testing.B) {
	creds := awscreds.Credentials{AccessKeyID: "ASIAEXAMPLEEXAMPLE12", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", SessionToken: string(bytes.Repeat([]byte("t"), 600))}
	body := bytes.Repeat([]byte("x"), 1024)
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequest(http.MethodPost, "https://abc123.execute-api.us-east-1.amazonaws.com/prod/items?limit=10", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if err := awscreds.SignRequest(ctx, r, creds, awscreds.SignOptions{Service: "execute-api", Region: "us-east-1"}, now); err != nil {
			b.Fatal(err)
		}
	}
}
