package decide

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"ztproxy/authn"
	"ztproxy/identity"
)

// Error is an error that already knows its status. Handlers return
// errors; StatusOf maps every error to a status and code, and the front
// doors' error writers are the only places that turn them into responses.
type Error struct {
	Status int
	Code   string // short machine-readable code
	Msg    string // safe to show to the client
	Err    error
	// Title, Link and LinkText, when set, are the HTML page's headline
	// and its one button.
	Title, Link, LinkText string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

var (
	errNoRoute      = &Error{Status: http.StatusNotFound, Code: "no_route", Msg: "no route for this host and path"}
	errBadHost      = &Error{Status: http.StatusBadRequest, Code: "bad_host", Msg: "missing or malformed Host"}
	errPath         = &Error{Status: http.StatusBadRequest, Code: "bad_path", Msg: "malformed or ambiguous request path", Err: errBadPath}
	ErrNoClientCert = &Error{Status: http.StatusUnauthorized, Code: "client_certificate_required", Msg: "a verified client certificate is required"}
	errWebSocket    = &Error{Status: http.StatusForbidden, Code: "websocket_not_allowed", Msg: "WebSocket upgrades are not enabled on this route"}
	errNotBrowser   = &Error{Status: http.StatusUnauthorized, Code: "login_required", Msg: "browser sign-in is not configured for this route"}
	// errPathParams: issue 12.2, servlet containers strip ";parameters"
	// and read "..;" as "..", so only routes that opt in accept them.
	errPathParams = &Error{Status: http.StatusBadRequest, Code: "path_parameters_not_allowed", Msg: "path parameters (;) are not allowed on this route", Err: errBadPath}
	// errBadMethod: issue 12.4, one spelling of a method for policy and
	// upstream alike.
	errBadMethod = &Error{Status: http.StatusBadRequest, Code: "bad_method", Msg: "the method must be an upper-case HTTP method"}
	// ErrMethod refuses a method an endpoint does not take (and CONNECT,
	// which a reverse proxy never tunnels).
	ErrMethod = &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Msg: "method not allowed"}
	// ErrDeviceRevoked refuses a client certificate of a device the
	// inventory says is revoked or lost (issue 16), on every route.
	ErrDeviceRevoked = &Error{Status: http.StatusForbidden, Code: "device_revoked", Msg: "this device has been revoked or reported lost; enrol it again or use another device"}
)

// Denied carries a policy decision that is not Allow.
type Denied struct {
	Decision identity.Decision
	Bearer   bool // caller authenticated with a bearer token
	Cause    error
	// Hint is the caller's IdP step-up settings, for the RFC 9470
	// challenge's acr_values and max_age.
	Hint StepUpHint
	// Principal and Route say who was refused what, for the denial page
	// (issue 15.9); zero when policy was not asked.
	Principal identity.Principal
	Route     string
}

// StepUpHint is an IdP's step-up settings: what to ask for and how fresh.
type StepUpHint struct {
	ACRValues string
	MaxAge    time.Duration
}

func (e *Denied) Error() string {
	if e.Cause != nil {
		return "denied: could not decide: " + e.Cause.Error()
	}
	return "denied by policy " + strings.Join(e.Decision.PolicyIDs, ",")
}

func (e *Denied) Unwrap() error { return e.Cause }

// CodeStoreUnavailable answers a browser request whose session could not
// be checked or saved because the session store is unreachable
// (authn.ErrStoreUnavailable): 503, nothing granted.
const CodeStoreUnavailable = "session_store_unavailable"

// StatusOf maps an error to its HTTP status and a short code for logs and
// metrics.
func StatusOf(err error) (int, string) {
	var he *Error
	var be *authn.BearerError
	var de *Denied
	var ln *LoginNeeded
	var se *authn.SignInError
	switch {
	case errors.As(err, &he):
		return he.Status, he.Code
	case errors.As(err, new(*RateLimited)):
		return http.StatusTooManyRequests, "rate_limited"
	case errors.As(err, &ln):
		if ln.Code != "" {
			return http.StatusUnauthorized, ln.Code
		}
		return http.StatusUnauthorized, "login_required"
	case errors.As(err, new(*StepUpNeeded)):
		return http.StatusForbidden, "step_up"
	case errors.As(err, &se):
		return se.Status, se.Code
	case errors.As(err, &be):
		return http.StatusUnauthorized, be.Code
	case errors.Is(err, authn.ErrStoreUnavailable):
		return http.StatusServiceUnavailable, CodeStoreUnavailable
	case errors.As(err, &de):
		if de.Decision.Effect == identity.StepUp && de.Bearer {
			return http.StatusUnauthorized, "insufficient_user_authentication"
		}
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "upstream_timeout"
	case errors.Is(err, context.Canceled):
		return 499, "client_closed"
	}
	return http.StatusInternalServerError, "internal"
}

// BearerChallenge renders an RFC 6750 challenge.
func BearerChallenge(code, description string) string {
	return fmt.Sprintf(`Bearer error=%q, error_description=%q`, code, SanitizeQuoted(description))
}

// StepUpChallenge renders an RFC 9470 insufficient_user_authentication
// challenge from the step-up requirements.
func StepUpChallenge(d identity.Decision, hint StepUpHint) string {
	var acrs []string
	for _, req := range d.StepUp {
		if v, ok := strings.CutPrefix(req, "acr:"); ok {
			acrs = append(acrs, v)
		} else if req == "mfa" && hint.ACRValues != "" {
			acrs = append(acrs, strings.Fields(hint.ACRValues)...)
		}
	}
	c := `Bearer error="insufficient_user_authentication", error_description="a stronger or more recent authentication is required"`
	if len(acrs) > 0 {
		c += fmt.Sprintf(`, acr_values=%q`, SanitizeQuoted(strings.Join(acrs, " ")))
	}
	if hint.MaxAge > 0 {
		c += fmt.Sprintf(`, max_age=%d`, int(hint.MaxAge/time.Second))
	}
	return c
}

// SanitizeQuoted keeps a value safe inside a quoted-string (RFC 9110).
func SanitizeQuoted(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
