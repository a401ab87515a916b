// Package identity is the leaf vocabulary shared by every ztproxy package:
// who is calling (Principal), from which device (Device), the full request
// context a policy sees (RequestContext) and the outcome (Decision).
//
// It imports only the standard library so that any package may use it
// without creating an import cycle.
package identity

import (
	"net/netip"
	"time"
)

// AuthKind says how a principal proved who it is.
type AuthKind string

// The ways a request can be authenticated.
const (
	AuthNone    AuthKind = "none"    // public route, nobody authenticated
	AuthBrowser AuthKind = "browser" // OIDC session cookie
	AuthBearer  AuthKind = "bearer"  // bearer JWT
	AuthMTLS    AuthKind = "mtls"    // client certificate only (service identity)
)

// PrincipalKind distinguishes people from workloads; it becomes the Cedar
// entity type of the principal.
type PrincipalKind string

// Principal kinds.
const (
	KindAnonymous PrincipalKind = "Anonymous"
	KindUser      PrincipalKind = "User"
	KindService   PrincipalKind = "Service"
)

// Principal is an authenticated caller.
type Principal struct {
	Kind PrincipalKind
	// ID is the stable, issuer-qualified identifier used as the Cedar entity
	// id: "<issuer>#<sub>" for users, the SPIFFE id or client id for services.
	ID            string
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	// Username is the IdP's user name: the username claim of an Amazon
	// Cognito access token, cognito:username of an ID token; empty when
	// the token carries neither. Unlike a display name it is unique in
	// its user pool, and unlike sub it is what people are known by.
	Username string
	Groups   []string
	// Scopes are the OAuth scopes of a bearer access token (its scope
	// claim, or scp); empty for ID tokens and browser sessions.
	Scopes []string
	// Claims holds selected extra claims (string-valued) exposed to policy.
	Claims   map[string]string
	AuthKind AuthKind
	AMR      []string
	ACR      string
	// AuthTime is when the user last actively authenticated (auth_time);
	// zero when unknown.
	AuthTime time.Time
	// Expiry is when the credential that proved this identity expires.
	Expiry time.Time
	// SessionID identifies a browser session; empty for other kinds.
	SessionID string
	// IdP is the configured name of the identity provider that vouched.
	IdP string
}

// Anonymous is the principal of a request nobody authenticated.
var Anonymous = Principal{Kind: KindAnonymous, ID: "anonymous", AuthKind: AuthNone}

// UserID builds the issuer-qualified user id used as the Cedar entity id.
func UserID(issuer, subject string) string { return issuer + "#" + subject }

// HasMFA reports whether the authentication methods include a second factor.
func (p *Principal) HasMFA() bool {
	for _, m := range p.AMR {
		switch m {
		case "mfa", "otp", "hwk", "swk", "webauthn", "sms", "fpt", "face", "iris", "retina", "sc", "totp":
			return true
		}
	}
	return false
}

// Device is what the verified client certificate says about the caller's
// device or workload. The zero value means no certificate was presented.
type Device struct {
	Present bool
	// ID is the best stable name for the device: the SPIFFE id if present,
	// else the first DNS or email SAN, else the certificate's common name.
	ID          string
	SPIFFEID    string
	DNSNames    []string
	Emails      []string
	CommonName  string
	Fingerprint string // hex SHA-256 of the leaf certificate DER
	NotAfter    time.Time

	// The facts below come from the device inventory (package devices)
	// and are the zero value when no inventory is configured or it knows
	// nothing of this certificate.

	// Checked says the inventory was asked about this certificate and
	// answered (found or not).
	Checked bool
	// Enrolled says the certificate is the current (or, during renewal,
	// the previous) certificate of a device in the inventory.
	Enrolled bool
	// Owner is the principal id (User "<issuer>#<sub>") the device is
	// bound to; "" when not enrolled.
	Owner string
	// Status is the inventory status: DeviceActive, DeviceRevoked or
	// DeviceLost; "" when not enrolled.
	Status string
	// Managed is set by an operator or an MDM import.
	Managed bool
	// Posture holds the typed facts last known about the device; a fact
	// not known (never reported, unreadable, or older than the
	// inventory's posture max age) is false/empty and listed in
	// Posture.Unknown().
	Posture Posture
	// PostureTime is when the newest fact in Posture was recorded; zero
	// when none is known.
	PostureTime time.Time
	// PostureStale says facts were reported but all are older than the
	// inventory's posture max age (and so dropped from Posture).
	PostureStale bool
}

// Device inventory statuses.
const (
	DeviceActive  = "active"
	DeviceRevoked = "revoked"
	DeviceLost    = "lost"
)

// Refused reports whether the inventory says this device must be refused
// (revoked or reported lost).
func (d *Device) Refused() bool {
	return d.Status == DeviceRevoked || d.Status == DeviceLost
}

// OwnerMatches reports whether the device is enrolled to p.
func (d *Device) OwnerMatches(p *Principal) bool {
	return d.Enrolled && d.Owner != "" && p.Kind == KindUser && d.Owner == p.ID
}

// RiskLevel buckets a risk score.
type RiskLevel string

// Risk levels.
const (
	RiskLow    RiskLevel = "low"
	RiskMedium RiskLevel = "medium"
	RiskHigh   RiskLevel = "high"
)

// RiskReason is one signal that contributed to a score.
type RiskReason struct {
	Code   string `json:"code"`
	Points int    `json:"points"`
}

// Risk is the behavioral risk assessment of one request.
type Risk struct {
	Score   int          `json:"score"`
	Level   RiskLevel    `json:"level"`
	Reasons []RiskReason `json:"reasons,omitempty"`
}

// NeutralRisk is the assessment used when no risk engine is configured.
var NeutralRisk = Risk{Score: 0, Level: RiskLow}

// RequestContext is everything policy may look at for one request.
type RequestContext struct {
	RequestID string
	Route     string
	Method    string // upper case
	Host      string // canonical
	Path      string // canonical, exactly what is forwarded
	UserAgent string

	ClientIP         netip.Addr
	TrustedProxyHops int

	Principal Principal
	Device    Device
	Risk      Risk
	Time      time.Time
}

// Effect is the outcome of a policy decision.
type Effect int

// Effects. The zero value is Deny so that a forgotten assignment fails closed.
const (
	Deny Effect = iota
	Allow
	StepUp
)

// String returns "deny", "allow" or "step_up".
func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case StepUp:
		return "step_up"
	default:
		return "deny"
	}
}

// Decision is a policy outcome with what decided it.
type Decision struct {
	Effect Effect
	// PolicyIDs are the ids of the policies that determined the outcome:
	// the permitting policies for Allow, the forbidding (or, with no permit,
	// none) for Deny and StepUp.
	PolicyIDs []string
	// StepUp lists the @step_up requirements ("mfa", "webauthn",
	// "acr:<value>") of the policies that asked for step-up.
	StepUp []string
	// Reasons are human-readable explanations (policy @reason annotations or
	// evaluation errors), safe to show to the user themselves.
	Reasons []string
	// Hints, on a Deny that no policy permitted, are the @reason sentences
	// of the permits written for this route: who may use it, for the
	// denial page to tell the user what to ask for. Policies without a
	// @reason stay private.
	Hints []string
}
