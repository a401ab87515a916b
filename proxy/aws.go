package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"ztproxy/awscreds"
)

// AWSMinter mints a user's short-lived AWS credentials.
type AWSMinter interface {
	Credentials(ctx context.Context, req awscreds.Request) (awscreds.Credentials, error)
}

var _ AWSMinter = (*awscreds.Minter)(nil)

// RouteAWS makes a route's upstream an AWS service reached with the
// user's own credentials.
type RouteAWS struct {
	Role string
	// SignService and SignRegion, when set, re-sign forwarded requests
	// with SigV4.
	SignService, SignRegion string
	UnsignedPayload         bool
}

// mintAWS gets the caller's credentials for role, after policy allowed the
// request. The web identity token is the caller's bearer token or the
// browser session's ID token.
func (s *Server) mintAWS(ctx context.Context, x *exchange, role string) (awscreds.Credentials, error) {
	m := x.snap.cfg.AWS
	if m == nil {
		return awscreds.Credentials{}, &httpError{status: http.StatusNotFound, code: "aws_not_configured", msg: "AWS credentials are not configured"}
	}
	p := &x.rc.Principal
	req := awscreds.Request{
		Role: role, Principal: *p, DeviceID: x.rc.Device.ID, RiskLevel: string(x.rc.Risk.Level),
		Route: x.rc.Route, SessionExpiry: p.Expiry, WebIdentityToken: x.rawBearer,
	}
	if req.WebIdentityToken == "" && p.SessionID != "" && x.snap.cfg.Browser != nil {
		tok, err := x.snap.cfg.Browser.IDToken(ctx, p.SessionID)
		if err != nil {
			return awscreds.Credentials{}, &httpError{status: http.StatusServiceUnavailable, code: "session_check_failed", msg: "your session could not be read", err: err}
		}
		req.WebIdentityToken = tok
	}
	creds, err := m.Credentials(ctx, req)
	switch {
	case err == nil:
		return creds, nil
	case errors.Is(err, awscreds.ErrRiskTooHigh):
		return creds, &httpError{status: http.StatusForbidden, code: "aws_risk_too_high", msg: "AWS credentials are not issued while your risk level is high", err: err}
	case errors.Is(err, awscreds.ErrSessionTooShort):
		return creds, &httpError{status: http.StatusUnauthorized, code: "aws_session_too_short", msg: "your session ends too soon for AWS credentials; sign in again", err: err}
	case errors.Is(err, awscreds.ErrSTSUnavailable):
		return creds, &httpError{status: http.StatusServiceUnavailable, code: "aws_unavailable", msg: "AWS credentials are temporarily unavailable; try again shortly", err: err}
	case errors.Is(err, awscreds.ErrUnknownRole):
		return creds, &httpError{status: http.StatusNotFound, code: "aws_unknown_role", msg: "no such AWS role", err: err}
	}
	return creds, &httpError{status: http.StatusBadGateway, code: "aws_sts_refused", msg: "AWS refused to issue credentials", err: err}
}

// awsSigningTransport re-signs outbound requests with the caller's minted
// credentials. It runs after Rewrite, as the last step, because SigV4
// covers every header present.
type awsSigningTransport struct {
	base  http.RoundTripper
	route *RouteConfig
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
