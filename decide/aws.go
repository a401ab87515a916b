package decide

import (
	"context"
	"errors"
	"net/http"

	"ztproxy/awscreds"
	"ztproxy/tracing"
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
	// MaxBufferedBody bounds the body bytes buffered to hash for SigV4
	// (awscreds.DefaultMaxBufferedBody when zero); UnsignedPayload lets
	// larger S3 bodies stream as UNSIGNED-PAYLOAD.
	MaxBufferedBody int64
	UnsignedPayload bool
}

// MintAWS gets the caller's credentials for role, after policy allowed
// the request. The web identity token is the caller's bearer token or the
// browser session's ID token.
func (e *Engine) MintAWS(ctx context.Context, x *Exchange, role string) (awscreds.Credentials, error) {
	m := e.cfg.AWS
	if m == nil {
		return awscreds.Credentials{}, &Error{Status: http.StatusNotFound, Code: "aws_not_configured", Msg: "AWS credentials are not configured"}
	}
	p := &x.RC.Principal
	req := awscreds.Request{
		Role: role, Principal: *p, DeviceID: x.RC.Device.ID, RiskLevel: string(x.RC.Risk.Level),
		Route: x.RC.Route, SessionExpiry: p.Expiry, WebIdentityToken: x.RawBearer,
	}
	if req.WebIdentityToken == "" && p.SessionID != "" && e.cfg.Browser != nil {
		tok, err := e.cfg.Browser.IDToken(ctx, p.SessionID)
		if err != nil {
			return awscreds.Credentials{}, &Error{Status: http.StatusServiceUnavailable, Code: "session_check_failed", Msg: "your session could not be read", Err: err}
		}
		req.WebIdentityToken = tok
	}
	ctx, span := e.opts.Tracer.Start(ctx, "sts")
	creds, err := m.Credentials(ctx, req)
	if err != nil {
		tracing.Fail(span, "sts")
	}
	span.End()
	switch {
	case err == nil:
		return creds, nil
	case errors.Is(err, awscreds.ErrRiskTooHigh):
		return creds, &Error{Status: http.StatusForbidden, Code: "aws_risk_too_high", Msg: "AWS credentials are not issued while your risk level is high", Err: err}
	case errors.Is(err, awscreds.ErrSessionTooShort):
		return creds, &Error{Status: http.StatusUnauthorized, Code: "aws_session_too_short", Msg: "your session ends too soon for AWS credentials; sign in again", Err: err}
	case errors.Is(err, awscreds.ErrSTSUnavailable):
		return creds, &Error{Status: http.StatusServiceUnavailable, Code: "aws_unavailable", Msg: "AWS credentials are temporarily unavailable; try again shortly", Err: err}
	case errors.Is(err, awscreds.ErrEmailUnverified):
		return creds, &Error{Status: http.StatusForbidden, Code: "aws_email_unverified", Msg: "AWS credentials for this role need an email address your identity provider has verified", Err: err}
	case errors.Is(err, awscreds.ErrTemplateInput):
		return creds, &Error{Status: http.StatusForbidden, Code: "aws_identity_refused", Msg: "your identity holds characters that cannot be used in this role's AWS session policy or tags", Err: err}
	case errors.Is(err, awscreds.ErrUnknownRole):
		return creds, &Error{Status: http.StatusNotFound, Code: "aws_unknown_role", Msg: "no such AWS role", Err: err}
	}
	return creds, &Error{Status: http.StatusBadGateway, Code: "aws_sts_refused", Msg: "AWS refused to issue credentials", Err: err}
}
