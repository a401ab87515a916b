package proxy

import (
	"errors"
	"net/http"
	"time"

	"ztproxy/awscreds"
	"ztproxy/decide"
)

// awsSigningTransport re-signs outbound requests with the caller's minted
// credentials. It runs after Rewrite, as the last step, because SigV4
// covers every header present.
type awsSigningTransport struct {
	base http.RoundTripper
	opts awscreds.SignOptions
	now  func() time.Time
}

func newAWSSigningTransport(base http.RoundTripper, a *decide.RouteAWS, now func() time.Time) *awsSigningTransport {
	return &awsSigningTransport{base: base, now: now, opts: awscreds.SignOptions{
		Service: a.SignService, Region: a.SignRegion,
		MaxBufferedBody: a.MaxBufferedBody, UnsignedPayload: a.UnsignedPayload,
	}}
}

func (t *awsSigningTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	x := exchangeFrom(r.Context())
	if x == nil || x.awsCreds == nil {
		return nil, errors.New("aws: no credentials for a signed route")
	}
	err := awscreds.SignRequest(r.Context(), r, *x.awsCreds, t.opts, t.now())
	switch {
	case err == nil:
		return t.base.RoundTrip(r)
	case errors.Is(err, awscreds.ErrBodyTooLarge):
		return nil, &decide.Error{Status: http.StatusRequestEntityTooLarge, Code: "aws_body_too_large",
			Msg: "the request body is larger than this AWS route signs; ask the operator about aws.sign.max_buffered_body", Err: err}
	case errors.Is(err, awscreds.ErrLengthRequired):
		return nil, &decide.Error{Status: http.StatusLengthRequired, Code: "aws_length_required",
			Msg: "a request body this large must be sent with Content-Length, not chunked", Err: err}
	}
	return nil, err
}
