// Package decide is ztproxy's decision engine: everything between a
// request arriving at a front door and the verdict on it. It builds the
// request context (canonical host and path, exactly one route, the
// client address through trusted_proxies, the device of a verified
// client certificate), authenticates the caller (session cookie, bearer
// JWT, client certificate, a front proxy's assertion), scores risk, lets
// Cedar policy decide and turns a step-up into where a browser must go.
//
// The API every front door uses is small:
//
//   - New compiles a Config into an immutable Engine; a reload builds a
//     new one and the listener swaps it in atomically.
//   - Engine.Begin starts an Exchange (the per-request record) from an
//     *http.Request; Engine.Decide returns a Verdict: nil Err to go on,
//     otherwise why not (*Denied, *StepUpNeeded, *LoginNeeded,
//     *authn.BearerError, *Error), plus session cookies to set.
//   - StatusOf maps any error to its HTTP status and code, in one place.
//   - NewAuditOnce writes exactly one audit line and metric sample per
//     request, also when the front door's handler panics.
//
// After an allow, MintAWS gets the caller's AWS credentials (reverse
// proxy and portal). The portal adds AuthenticateEndpoint,
// AuthorizeAWSRole, AssessRisk and Preview for its own pages; ext_authz,
// which has no *http.Request of its own to Begin with, builds the
// exchange with NewRequestID, ClientAddress, ParseAddr and WithPosture.
//
// It writes no HTTP response, renders no HTML and forwards nothing. It
// must not import the front doors (proxy, forwardauth, portal) or
// anything above them; it imports the components it decides with
// (authn, authz, certs, awscreds), the shared leaves (audit, metrics,
// idheaders for the assertion header name, upstream for the route's
// transport mode) and identity.
package decide
