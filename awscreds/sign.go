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

// DefaultMaxBufferedBody is the default SignOptions.MaxBufferedBody: the
// largest request body buffered in memory to hash it for SigV4.
const DefaultMaxBufferedBody = 8 << 20

// MaxBufferedBodyLimit is the largest MaxBufferedBody a route may set.
const MaxBufferedBodyLimit = 64 << 20

// Errors SignRequest returns for bodies it will not sign; the proxy maps
// them to 413 and 411.
var (
	// ErrBodyTooLarge means a body exceeds SignOptions.MaxBufferedBody and
	// the route does not allow UNSIGNED-PAYLOAD.
	ErrBodyTooLarge = errors.New("awscreds: request body too large to sign")
	// ErrLengthRequired means a body of unknown length (chunked) exceeds
	// MaxBufferedBody on a route allowing UNSIGNED-PAYLOAD: S3 needs the
	// length up front, and streaming it without one would fail there.
	ErrLengthRequired = errors.New("awscreds: a body this large must be sent with Content-Length")
)

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

// SignOptions say how SignRequest signs one route's requests.
type SignOptions struct {
	// Service and Region are the SigV4 scope ("s3", "execute-api", …).
	Service, Region string
	// MaxBufferedBody bounds the bytes buffered in memory to hash a body;
	// DefaultMaxBufferedBody when zero.
	MaxBufferedBody int64
	// UnsignedPayload lets bodies larger than MaxBufferedBody stream with
	// the payload hash UNSIGNED-PAYLOAD. Only service "s3" accepts it.
	// Bodies within the bound are hashed and signed regardless.
	UnsignedPayload bool
}

// SignRequest re-signs an outbound request with SigV4 with creds at time
// now. Call it last, after the URL and Host are final: every header
// present is signed, and changing one afterwards breaks the signature.
//
// It first removes the inbound Authorization header, every X-Amz-* header
// (including x-amz-meta-* and x-amz-acl: the client's own AWS parameters
// are not forwarded) and presigned-URL query parameters. It sets the URL's
// RawPath to the SigV4 encoding of its path (every byte but A–Z a–z 0–9
// - . _ ~ and / percent-encoded), so the signed path and the path on the
// wire are the same bytes; S3 signs that path as it is, every other
// service signs it encoded once more, as SigV4 requires.
//
// A body of at most MaxBufferedBody bytes is buffered, hashed and sent
// with Content-Length (never chunked: S3 refuses chunked bodies with 411).
// A larger one streams untouched as UNSIGNED-PAYLOAD when opts allow it
// and its length is known, else ErrLengthRequired or ErrBodyTooLarge. For
// s3 the X-Amz-Content-Sha256 header S3 requires is set. The session
// token goes in X-Amz-Security-Token.
func SignRequest(ctx context.Context, r *http.Request, creds Credentials, opts SignOptions, now time.Time) error {
	isS3 := opts.Service == "s3"
	if opts.UnsignedPayload && !isS3 {
		return fmt.Errorf("awscreds: UNSIGNED-PAYLOAD is only allowed for s3, not %q", opts.Service)
	}
	for name := range r.Header {
		if strings.EqualFold(name, "Authorization") || len(name) >= 6 && strings.EqualFold(name[:6], "X-Amz-") {
			delete(r.Header, name)
		}
	}
	stripPresignParams(r)
	r.URL.RawPath = EscapePath(r.URL.Path)
	payloadHash, err := prepareBody(r, opts)
	if err != nil {
		return err
	}
	if isS3 {
		r.Header["X-Amz-Content-Sha256"] = []string{payloadHash}
	}
	awsCreds := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	// A signer per call: the SDK signer caches one derived key per service
	// and region, keyed by access key id but not by secret, behind a mutex
	// every proxy goroutine would share; deriving is a few HMACs.
	err = v4.NewSigner().SignHTTP(ctx, awsCreds, r, payloadHash, opts.Service, opts.Region, now, func(o *v4.SignerOptions) {
		// S3 expects the path escaped once, every other service twice.
		o.DisableURIPathEscaping = isS3
	})
	if err != nil {
		return fmt.Errorf("awscreds: signing: %w", err)
	}
	return nil
}

// EscapePath is SigV4's URI encoding of a path: every byte outside the
// RFC 3986 unreserved set, except "/", becomes %XX (upper-case hex). It is
// the SDK's httpbinding.EscapePath without an allocation per byte, and
// returns path itself when nothing needs escaping.
func EscapePath(path string) string {
	n := 0
	for i := 0; i < len(path); i++ {
		if !pathByteKept(path[i]) {
			n++
		}
	}
	if n == 0 {
		return path
	}
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(path)+2*n)
	for i := 0; i < len(path); i++ {
		if c := path[i]; pathByteKept(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return string(b)
}

func pathByteKept(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '/'
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

// prepareBody returns the payload hash to sign and leaves the request
// framed with Content-Length: buffered and hashed when the body fits
// opts.MaxBufferedBody, streaming as UNSIGNED-PAYLOAD when it does not and
// the route allows that.
func prepareBody(r *http.Request, opts SignOptions) (string, error) {
	limit := opts.MaxBufferedBody
	if limit <= 0 {
		limit = DefaultMaxBufferedBody
	}
	r.TransferEncoding = nil
	if r.Body == nil || r.Body == http.NoBody {
		// A client request's ContentLength 0 with a Body means "unknown";
		// only a missing body is known to be empty.
		r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
		return emptyPayloadHash, nil
	}
	if r.ContentLength > limit {
		if opts.UnsignedPayload {
			return unsignedPayload, nil // streams with its declared length
		}
		_ = r.Body.Close()
		return "", fmt.Errorf("%w: %d bytes, at most %d are signed", ErrBodyTooLarge, r.ContentLength, limit)
	}
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1 // +1 lets ReadFrom see EOF without growing
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	_ = r.Body.Close()
	if err != nil {
		return "", fmt.Errorf("awscreds: reading body to sign: %w", err)
	}
	if int64(buf.Len()) > limit {
		if opts.UnsignedPayload {
			return "", fmt.Errorf("%w: more than %d bytes without Content-Length", ErrLengthRequired, limit)
		}
		return "", fmt.Errorf("%w: more than %d bytes, at most %d are signed", ErrBodyTooLarge, limit, limit)
	}
	body := buf.Bytes()
	sum := sha256.Sum256(body)
	r.ContentLength = int64(len(body))
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	if len(body) == 0 {
		r.Body, r.GetBody = http.NoBody, nil
	}
	return hex.EncodeToString(sum[:]), nil
}
