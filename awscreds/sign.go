package awscreds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// MaxSignedBodyBytes is the largest body SignRequest buffers to hash.
const MaxSignedBodyBytes = 10 << 20

// ErrBodyTooLarge means a body to be signed exceeds MaxSignedBodyBytes.
var ErrBodyTooLarge = errors.New("awscreds: request body too large to sign")

const (
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// emptyPayloadHash is the SHA-256 of an empty body.
	emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// presignQueryParams are the query parameters of a presigned URL; a client
// must not be able to smuggle its own authorization past the re-signing.
var presignQueryParams = []string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
}

// SignRequest re-signs an outbound request with SigV4 for service and region
// using creds, at time now. Call it last, after the URL and Host are final:
// every header present is signed, and changing one afterwards breaks the
// signature.
//
// It first removes the inbound Authorization header, every X-Amz-* header
// (including x-amz-meta-* and x-amz-acl: the client's own AWS parameters
// are not forwarded) and presigned-URL query parameters. The body is
// buffered (at most MaxSignedBodyBytes, else ErrBodyTooLarge), hashed and
// restored, unless unsignedPayloadOK is set, which only service "s3" allows:
// then the body streams untouched and the payload is UNSIGNED-PAYLOAD. For
// s3 the X-Amz-Content-Sha256 header S3 requires is set. The session token
// goes in X-Amz-Security-Token.
func SignRequest(ctx context.Context, r *http.Request, creds Credentials, service, region string, now time.Time, unsignedPayloadOK bool) error {
	isS3 := service == "s3"
	if unsignedPayloadOK && !isS3 {
		return fmt.Errorf("awscreds: UNSIGNED-PAYLOAD is only allowed for s3, not %q", service)
	}
	for name := range r.Header {
		if strings.EqualFold(name, "Authorization") || len(name) >= 6 && strings.EqualFold(name[:6], "X-Amz-") {
			delete(r.Header, name)
		}
	}
	stripPresignParams(r)
	payloadHash := unsignedPayload
	if !unsignedPayloadOK {
		var err error
		if payloadHash, err = hashBody(r); err != nil {
			return err
		}
	}
	if isS3 {
		r.Header["X-Amz-Content-Sha256"] = []string{payloadHash}
	}
	awsCreds := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	// A signer per call: the SDK signer caches one derived key per service
	// and region, keyed by access key id but not by secret, behind a mutex
	// every proxy goroutine would share; deriving is a few HMACs.
	err := v4.NewSigner().SignHTTP(ctx, awsCreds, r, payloadHash, service, region, now, func(o *v4.SignerOptions) {
		// S3 expects the path escaped once, every other service twice.
		o.DisableURIPathEscaping = isS3
	})
	if err != nil {
		return fmt.Errorf("awscreds: signing: %w", err)
	}
	return nil
}

func stripPresignParams(r *http.Request) {
	if r.URL.RawQuery == "" || !strings.Contains(r.URL.RawQuery, "X-Amz-") {
		return
	}
	q := r.URL.Query()
	for _, p := range presignQueryParams {
		q.Del(p)
	}
	r.URL.RawQuery = q.Encode()
}

// hashBody buffers the body, returns its hex SHA-256 and puts an identical,
// replayable body back on the request.
func hashBody(r *http.Request) (string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return emptyPayloadHash, nil
	}
	size := 512
	if r.ContentLength > 0 && r.ContentLength <= MaxSignedBodyBytes {
		size = int(r.ContentLength) + 1 // +1 lets ReadFrom see EOF without growing
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(io.LimitReader(r.Body, MaxSignedBodyBytes+1))
	_ = r.Body.Close()
	if err != nil {
		return "", fmt.Errorf("awscreds: reading body to sign: %w", err)
	}
	if buf.Len() > MaxSignedBodyBytes {
		return "", ErrBodyTooLarge
	}
	body := buf.Bytes()
	sum := sha256.Sum256(body)
	r.ContentLength = int64(len(body))
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	if len(body) == 0 {
		r.Body = http.NoBody
	}
	return hex.EncodeToString(sum[:]), nil
}
