package decide

import (
	"context"
	"net/http"
	"time"

	"ztproxy/authn"
	"ztproxy/authz"
	"ztproxy/identity"
)

// Authorizer decides one request. A deny is a Decision; an error means the
// decision could not be made and the proxy fails closed.
type Authorizer interface {
	Decide(rc *identity.RequestContext) (identity.Decision, error)
}

// BearerVerifier turns a raw bearer JWT into a principal.
type BearerVerifier interface {
	Verify(ctx context.Context, raw string) (identity.Principal, error)
}

// RiskScorer assesses the risk of one request. An error means the score is
// unknown; the scorer's own failure policy decides what to return with it.
type RiskScorer interface {
	Score(ctx context.Context, rc *identity.RequestContext) (identity.Risk, error)
}

// AssertionVerifier checks a front proxy's X-Ztp-Assertion for this
// service (aud) and returns the identity and device it carries.
type AssertionVerifier interface {
	Verify(ctx context.Context, raw, audience string) (identity.Principal, identity.Device, error)
}

// DeviceInventory adds the device inventory's facts (enrolled, owner,
// status, managed, posture) to the device of a verified client
// certificate. It must answer fast (a cache) and never fail: a device it
// cannot look up comes back unchanged, so it counts as not enrolled.
type DeviceInventory interface {
	DeviceFacts(ctx context.Context, d identity.Device) identity.Device
}

// PrincipalGuard knows which principals (users and services) an operator
// or a security event flagged compromised: a hard deny on every route,
// whatever policy says. It must answer from memory (the request path reads
// no store for it); an error means it cannot tell yet, and the request is
// refused (503).
type PrincipalGuard interface {
	Compromised(principalID string) (reason string, compromised bool, err error)
	// StepUpSince reports that the principal must authenticate again
	// unless it did after the returned time (a security event said its
	// authentication no longer counts).
	StepUpSince(principalID string) (time.Time, bool)
}

// SignalReceiver takes Security Event Tokens pushed to
// /.ztp/security-events (RFC 8935). A refused SET's error has a
// SETError() (code, description) method.
type SignalReceiver interface {
	ReceiveSET(ctx context.Context, set []byte) error
}

// AdminAPI is the operator API the portal serves under /.ztp/admin/v1/
// (issue 17) once it has authenticated the caller: Allowed says whether
// that principal is an operator, ServeAdmin answers the call.
type AdminAPI interface {
	Allowed(p identity.Principal) bool
	ServeAdmin(w http.ResponseWriter, r *http.Request, operator identity.Principal)
}

var (
	_ AssertionVerifier = (*authn.AssertionVerifier)(nil)
	_ Authorizer        = (*authz.Engine)(nil)
	_ BearerVerifier    = (*authn.BearerVerifier)(nil)
)
