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
	base  http.RoundTripper
	route *decide.RouteConfig
	now   func() time.Time
}

func (t *awsSigningTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	x := exchangeFrom(r.Context())
	if x == nil || x.awsCreds == nil {
		return nil, errors.New("aws: no credentials for a signed route")
	}
	a := t.route.AWS
	if err := awscreds.SignRequest(r.Context(), r, *x.awsCreds, a.SignService, a.SignRegion, t.now(), a.UnsignedPayload); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(r)
}
