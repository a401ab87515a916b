package awscreds_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ztproxy/awscreds"
	"ztproxy/internal/stsdouble"
)

// verifyingUpstream recomputes each request's SigV4 signature with the
// secret the double issued and answers 200 or 403.
func verifyingUpstream(t *testing.T, dbl *stsdouble.Server, service string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := dbl.VerifyRequest(r, service); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSignRequestVerifiedByUpstream(t *testing.T) {
	e := newEnv(t, nil)
	creds := e.get(t, awscreds.Request{Role: "analyst", Principal: user("alice")})
	up := verifyingUpstream(t, e.sts, "execute-api")

	newReq := func(body string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, up.URL+"/prod/items/a%20b?z=1&a=2", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		// Smuggled auth from the client must be dropped, not forwarded.
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAEVIL/x, SignedHeaders=host, Signature=00")
		r.Header.Set("X-Amz-Security-Token", "evil")
		r.Header["x-amz-date"] = []string{"19700101T000000Z"}
		return r
	}
	send := func(r *http.Request) int {
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	r := newReq(`{"item":"a"}`)
	if err := awscreds.SignRequest(context.Background(), r, creds, "execute-api", "us-east-1", time.Now(), false); err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("X-Amz-Security-Token") != creds.SessionToken || len(r.Header.Values("X-Amz-Date")) != 1 {
		t.Fatalf("inbound X-Amz-* headers not replaced: %v", r.Header)
	}
	if code := send(r); code != http.StatusOK {
		t.Fatalf("signed request: status %d", code)
	}

	tampered := newReq(`{"item":"a"}`)
	if err := awscreds.SignRequest(context.Background(), tampered, creds, "execute-api", "us-east-1", time.Now(), false); err != nil {
		t.Fatal(err)
	}
	tampered.Body = io.NopCloser(strings.NewReader(`{"item":"b"}`)) // same length, other bytes
	if code := send(tampered); code != http.StatusForbidden {
		t.Fatalf("tampered body: status %d, want 403", code)
	}

	wrongKey := creds
	wrongKey.SecretAccessKey = "not-the-secret"
	forged := newReq(`{}`)
	_ = awscreds.SignRequest(context.Background(), forged, wrongKey, "execute-api", "us-east-1", time.Now(), false)
	if code := send(forged); code != http.StatusForbidden {
		t.Fatalf("wrong secret: status %d, want 403", code)
	}
}

func TestSignRequestS3UnsignedPayload(t *testing.T) {
	e := newEnv(t, nil)
	creds := e.get(t, awscreds.Request{Role: "analyst", Principal: user("alice")})
	up := verifyingUpstream(t, e.sts, "s3")
	body := bytes.Repeat([]byte("x"), 4096)
	r, _ := http.NewRequest(http.MethodPut, up.URL+"/bucket/some key.txt?X-Amz-Signature=abc&partNumber=1", bytes.NewReader(body))
	if err := awscreds.SignRequest(context.Background(), r, creds, "s3", "us-east-1", time.Now(), true); err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("X-Amz-Content-Sha256") != "UNSIGNED-PAYLOAD" || strings.Contains(r.URL.RawQuery, "X-Amz-Signature") {
		t.Fatalf("header %q, query %q", r.Header.Get("X-Amz-Content-Sha256"), r.URL.RawQuery)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestSignRequestRefusals(t *testing.T) {
	creds := awscreds.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t"}
	r, _ := http.NewRequest(http.MethodPost, "https://api.example.com/", strings.NewReader("{}"))
	if err := awscreds.SignRequest(context.Background(), r, creds, "execute-api", "us-east-1", time.Now(), true); err == nil {
		t.Error("UNSIGNED-PAYLOAD accepted for execute-api")
	}
	big, _ := http.NewRequest(http.MethodPost, "https://api.example.com/", io.LimitReader(zeros{}, awscreds.MaxSignedBodyBytes+1))
	if err := awscreds.SignRequest(context.Background(), big, creds, "execute-api", "us-east-1", time.Now(), false); !errors.Is(err, awscreds.ErrBodyTooLarge) {
		t.Errorf("oversized body: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
