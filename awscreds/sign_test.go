package awscreds_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"

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
	if err := awscreds.SignRequest(context.Background(), r, creds, awscreds.SignOptions{Service: "execute-api", Region: "us-east-1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("X-Amz-Security-Token") != creds.SessionToken || len(r.Header.Values("X-Amz-Date")) != 1 {
		t.Fatalf("inbound X-Amz-* headers not replaced: %v", r.Header)
	}
	if code := send(r); code != http.StatusOK {
		t.Fatalf("signed request: status %d", code)
	}

	tampered := newReq(`{"item":"a"}`)
	if err := awscreds.SignRequest(context.Background(), tampered, creds, awscreds.SignOptions{Service: "execute-api", Region: "us-east-1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	tampered.Body = io.NopCloser(strings.NewReader(`{"item":"b"}`)) // same length, other bytes
	if code := send(tampered); code != http.StatusForbidden {
		t.Fatalf("tampered body: status %d, want 403", code)
	}

	wrongKey := creds
	wrongKey.SecretAccessKey = "not-the-secret"
	forged := newReq(`{}`)
	_ = awscreds.SignRequest(context.Background(), forged, wrongKey, awscreds.SignOptions{Service: "execute-api", Region: "us-east-1"}, time.Now())
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
	opts := awscreds.SignOptions{Service: "s3", Region: "us-east-1", UnsignedPayload: true, MaxBufferedBody: 1024}
	if err := awscreds.SignRequest(context.Background(), r, creds, opts, time.Now()); err != nil {
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
	if err := awscreds.SignRequest(context.Background(), r, creds, awscreds.SignOptions{Service: "execute-api", Region: "us-east-1", UnsignedPayload: true}, time.Now()); err == nil {
		t.Error("UNSIGNED-PAYLOAD accepted for execute-api")
	}
	big, _ := http.NewRequest(http.MethodPost, "https://api.example.com/", io.LimitReader(zeros{}, awscreds.DefaultMaxBufferedBody+1))
	if err := awscreds.SignRequest(context.Background(), big, creds, awscreds.SignOptions{Service: "execute-api", Region: "us-east-1"}, time.Now()); !errors.Is(err, awscreds.ErrBodyTooLarge) {
		t.Errorf("oversized body: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Issue 14.1: keys with $ & + , : ; = @ failed with SignatureDoesNotMatch
// at S3: the path went out as raw "a@b" while SigV4 (and S3) canonicalise
// every byte outside the unreserved set as %XX. Every printable ASCII byte
// must leave encoded exactly as it was signed.
func TestSignRequestPathOnTheWire(t *testing.T) {
	e := newEnv(t, nil)
	creds := e.get(t, awscreds.Request{Role: "analyst", Principal: user("alice")})
	for _, service := range []string{"s3", "execute-api"} {
		var gotPath string
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotPath = r.URL.Path
			if _, err := e.sts.VerifyRequest(r, service); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
			}
		}))
		t.Cleanup(up.Close)
		for c := byte(0x20); c < 0x7F; c++ {
			if c == '/' {
				continue
			}
			key := "/bucket/dir/a" + string(c) + "b"
			u, _ := url.Parse(up.URL)
			u.Path = key
			r := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Host: u.Host}
			if err := awscreds.SignRequest(context.Background(), r, creds, awscreds.SignOptions{Service: service, Region: "us-east-1"}, time.Now()); err != nil {
				t.Fatal(err)
			}
			want := "/bucket/dir/a" + sigv4Byte(c) + "b"
			if got := r.URL.EscapedPath(); got != want {
				t.Errorf("%s %q: on the wire %q, want %q", service, c, got, want)
				continue
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || gotPath != key {
				t.Errorf("%s %q: status %d, upstream path %q: %s", service, c, resp.StatusCode, gotPath, body)
			}
		}
	}
}

func sigv4Byte(c byte) string {
	if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
		return string(c)
	}
	return fmt.Sprintf("%%%02X", c)
}

// Issue 14.2: a chunked upload was signed with a content-length but sent
// chunked (S3: 411 MissingContentLength), and every body was buffered
// whole. Bodies within the bound are buffered and sent with Content-Length;
// larger ones stream as UNSIGNED-PAYLOAD with their declared length where
// the route allows it, and are refused otherwise.
func TestSignRequestBodyFraming(t *testing.T) {
	e := newEnv(t, nil)
	creds := e.get(t, awscreds.Request{Role: "analyst", Principal: user("alice")})
	type seen struct {
		length int64
		te     []string
		sha    string
		n      int
	}
	var got seen
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := e.sts.VerifyRequest(r, "s3") // reads and restores the body
		n, _ := io.Copy(io.Discard, r.Body)
		got = seen{r.ContentLength, r.TransferEncoding, r.Header.Get("X-Amz-Content-Sha256"), int(n)}
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	}))
	t.Cleanup(up.Close)
	// chunked is a body of unknown length sent with Transfer-Encoding:
	// chunked, as the proxy's inbound request from `curl -T -` is.
	chunked := func(n int) *http.Request {
		r, _ := http.NewRequest(http.MethodPut, up.URL+"/bucket/k", io.NopCloser(io.LimitReader(zeros{}, int64(n))))
		r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
		return r
	}
	sized := func(n int) *http.Request {
		r, _ := http.NewRequest(http.MethodPut, up.URL+"/bucket/k", io.NopCloser(io.LimitReader(zeros{}, int64(n))))
		r.ContentLength = int64(n)
		return r
	}
	send := func(r *http.Request, opts awscreds.SignOptions) (int, error) {
		opts.Service, opts.Region = "s3", "us-east-1"
		if err := awscreds.SignRequest(context.Background(), r, creds, opts, time.Now()); err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	const limit = 64 << 10
	for _, tc := range []struct {
		name     string
		req      *http.Request
		opts     awscreds.SignOptions
		wantErr  error
		unsigned bool
		n        int
	}{
		{name: "chunked within the bound", req: chunked(limit), opts: awscreds.SignOptions{MaxBufferedBody: limit}, n: limit},
		{name: "chunked within the bound, unsigned allowed", req: chunked(1000), opts: awscreds.SignOptions{MaxBufferedBody: limit, UnsignedPayload: true}, n: 1000},
		{name: "empty chunked", req: chunked(0), opts: awscreds.SignOptions{MaxBufferedBody: limit}},
		{name: "sized above the bound, unsigned allowed", req: sized(limit + 1), opts: awscreds.SignOptions{MaxBufferedBody: limit, UnsignedPayload: true}, unsigned: true, n: limit + 1},
		{name: "sized above the bound", req: sized(limit + 1), opts: awscreds.SignOptions{MaxBufferedBody: limit}, wantErr: awscreds.ErrBodyTooLarge},
		{name: "chunked above the bound", req: chunked(limit + 1), opts: awscreds.SignOptions{MaxBufferedBody: limit}, wantErr: awscreds.ErrBodyTooLarge},
		{name: "chunked above the bound, unsigned allowed", req: chunked(limit + 1), opts: awscreds.SignOptions{MaxBufferedBody: limit, UnsignedPayload: true}, wantErr: awscreds.ErrLengthRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = seen{}
			code, err := send(tc.req, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || code != http.StatusOK {
				t.Fatalf("status %d, err %v", code, err)
			}
			if got.length != int64(tc.n) || len(got.te) != 0 || got.n != tc.n {
				t.Errorf("upstream saw Content-Length %d, Transfer-Encoding %v, %d bytes; want %d, none", got.length, got.te, got.n, tc.n)
			}
			if (got.sha == "UNSIGNED-PAYLOAD") != tc.unsigned {
				t.Errorf("X-Amz-Content-Sha256 = %q, unsigned want %v", got.sha, tc.unsigned)
			}
		})
	}
}

// FuzzEscapePath: the path on the wire decodes back to the path, and
// agrees byte for byte with the SDK's own escaping, which computes the
// canonical URI S3 compares against.
func FuzzEscapePath(f *testing.F) {
	for _, s := range []string{"/", "/bucket/dir/a@b", "/a b/c+d", "/%41", "/\x00\xff/é", "/reports/*@example.com/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got := awscreds.EscapePath(path)
		if want := httpbinding.EscapePath(path, false); got != want {
			t.Fatalf("EscapePath(%q) = %q, SDK %q", path, got, want)
		}
		u := &url.URL{Path: path, RawPath: got}
		if got != path && u.EscapedPath() != got {
			t.Fatalf("net/url does not send %q for %q: %q", got, path, u.EscapedPath())
		}
		if back, err := url.PathUnescape(got); err != nil || back != path {
			t.Fatalf("%q decodes to %q, %v", got, back, err)
		}
	})
}
