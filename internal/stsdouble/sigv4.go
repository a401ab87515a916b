package stsdouble

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigAlgorithm    = "AWS4-HMAC-SHA256"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	amzDateFormat   = "20060102T150405Z"
)

// caller is an authenticated signer of a request.
type caller struct {
	accessKeyID string
	arn         string
	// chained is true when the caller signed with session credentials the
	// double issued, which makes an AssumeRole call role chaining.
	chained bool
}

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKeyID, date, region, service string
	signedHeaders, signature           string
}

// VerifyRequest verifies the SigV4 signature of a request that a test
// upstream received, signed for service with credentials this double issued
// (or a configured long-term key). It reads and restores r.Body. For service
// "s3" an X-Amz-Content-Sha256 of UNSIGNED-PAYLOAD is accepted; otherwise the
// body is always hashed, so a tampered body fails. The returned error is an
// *Error carrying the code AWS would return.
func (s *Server) VerifyRequest(r *http.Request, service string) (accessKeyID string, err error) {
	body, err := readBody(r)
	if err != nil {
		return "", &Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: err.Error()}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	c, e := s.authenticate(r, body, service)
	if e != nil {
		return "", e
	}
	return c.accessKeyID, nil
}

// authenticate recomputes the request's SigV4 signature with the SDK's
// signer from the raw request (method, path, query, the headers the client
// listed as signed, and the payload hash) and compares it with the one sent.
func (s *Server) authenticate(r *http.Request, body []byte, service string) (*caller, *Error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return nil, &Error{Status: http.StatusForbidden, Code: "MissingAuthenticationToken", Message: "Request is missing Authentication Token"}
	}
	auth, e := parseAuthorization(header)
	if e != nil {
		return nil, e
	}
	signingTime, e := s.checkScope(r, auth, service)
	if e != nil {
		return nil, e
	}
	creds, who, e := s.lookupSecret(r, auth.accessKeyID)
	if e != nil {
		return nil, e
	}
	payloadHash, e := payloadHashOf(r, body, service == "s3")
	if e != nil {
		return nil, e
	}
	expected, err := recomputeAuthorization(r, auth, creds, payloadHash, service, signingTime)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "IncompleteSignature", Message: err.Error()}
	}
	if expected.signedHeaders != auth.signedHeaders ||
		subtle.ConstantTimeCompare([]byte(expected.signature), []byte(auth.signature)) != 1 {
		return nil, &Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return who, nil
}

func parseAuthorization(header string) (authorization, *Error) {
	incomplete := func(msg string) (authorization, *Error) {
		return authorization{}, &Error{Status: http.StatusBadRequest, Code: "IncompleteSignature", Message: msg}
	}
	algorithm, rest, ok := strings.Cut(header, " ")
	if !ok || algorithm != sigAlgorithm {
		return incomplete("Unsupported AWS 'algorithm': '" + algorithm + "'")
	}
	var a authorization
	var credential string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || a.signedHeaders == "" || a.signature == "" {
		return incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.")
	}
	a.accessKeyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	return a, nil
}

// checkScope checks the credential scope and X-Amz-Date and returns the
// signing time.
func (s *Server) checkScope(r *http.Request, a authorization, service string) (time.Time, *Error) {
	mismatch := func(msg string) (time.Time, *Error) {
		return time.Time{}, &Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch", Message: msg}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signingTime, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return time.Time{}, &Error{Status: http.StatusBadRequest, Code: "IncompleteSignature", Message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}
	}
	if a.date != amzDate[:8] {
		return mismatch("Credential should be scoped to a valid date: '" + a.date + "'.")
	}
	if a.service != service {
		return mismatch("Credential should be scoped to correct service: '" + service + "'.")
	}
	if s.cfg.Region != "" && a.region != s.cfg.Region {
		return mismatch("Credential should be scoped to a valid region.")
	}
	if skew := s.cfg.MaxClockSkew; skew > 0 {
		now := time.Now().UTC()
		if signingTime.Before(now.Add(-skew)) || signingTime.After(now.Add(skew)) {
			return mismatch(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d min.)",
				amzDate, now.Add(-skew).Format(amzDateFormat), now.Format(amzDateFormat), int(skew.Minutes())))
		}
	}
	return signingTime, nil
}

// lookupSecret finds the secret for an access key id: a configured
// long-term key or live session credentials the double issued.
func (s *Server) lookupSecret(r *http.Request, akid string) (aws.Credentials, *caller, *Error) {
	invalid := &Error{Status: http.StatusForbidden, Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid."}
	if secret, ok := s.cfg.AccessKeys[akid]; ok {
		who := &caller{accessKeyID: akid, arn: "arn:aws:iam::" + s.cfg.AccountID + ":user/" + akid}
		return aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, who, nil
	}
	s.mu.Lock()
	issued, ok := s.issued[akid]
	s.mu.Unlock()
	if !ok {
		return aws.Credentials{}, nil, invalid
	}
	token := r.Header.Get("X-Amz-Security-Token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(issued.token)) != 1 {
		return aws.Credentials{}, nil, invalid
	}
	if !s.cfg.Now().Before(issued.expiration) {
		return aws.Credentials{}, nil, &Error{Status: http.StatusBadRequest, Code: "ExpiredToken", Message: "The security token included in the request is expired"}
	}
	who := &caller{accessKeyID: akid, arn: issued.arn, chained: true}
	return aws.Credentials{AccessKeyID: akid, SecretAccessKey: issued.secret, SessionToken: issued.token}, who, nil
}

// payloadHashOf returns the hash the signature must cover: the SHA-256 of
// the body, or UNSIGNED-PAYLOAD where the service allows it.
func payloadHashOf(r *http.Request, body []byte, allowUnsigned bool) (string, *Error) {
	sum := sha256.Sum256(body)
	computed := hex.EncodeToString(sum[:])
	declared := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case declared == "":
		return computed, nil
	case declared == unsignedPayload && allowUnsigned:
		return unsignedPayload, nil
	case declared != computed:
		return "", &Error{Status: http.StatusBadRequest, Code: "XAmzContentSHA256Mismatch", Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	return computed, nil
}

// recomputeAuthorization signs a copy of r that carries only the headers the
// client declared as signed and returns the resulting authorization.
func recomputeAuthorization(r *http.Request, a authorization, creds aws.Credentials, payloadHash, service string, signingTime time.Time) (authorization, error) {
	clone, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return authorization{}, fmt.Errorf("rebuilding request: %w", err)
	}
	clone.Host = r.Host
	clone.ContentLength = r.ContentLength
	for _, name := range strings.Split(a.signedHeaders, ";") {
		switch name {
		case "host", "content-length", "x-amz-date", "x-amz-security-token":
			// The signer derives these from the request, the time and the
			// credentials; copying them would duplicate values.
			continue
		}
		values := r.Header.Values(name)
		if len(values) == 0 {
			return authorization{}, fmt.Errorf("signed header %q is missing", name)
		}
		clone.Header[http.CanonicalHeaderKey(name)] = values
	}
	err = v4.NewSigner().SignHTTP(context.Background(), creds, clone, payloadHash, service, a.region, signingTime,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" })
	if err != nil {
		return authorization{}, fmt.Errorf("signing: %w", err)
	}
	out, e := parseAuthorization(clone.Header.Get("Authorization"))
	if e != nil {
		return authorization{}, e
	}
	return out, nil
}

// accessKeyOf extracts the access key id from an Authorization header for
// the request record; it does not verify anything.
func accessKeyOf(r *http.Request) string {
	_, rest, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	akid, _, _ := strings.Cut(rest, "/")
	return akid
}
