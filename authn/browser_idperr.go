package authn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// Codes of a failed request to the IdP's token endpoint (the code exchange
// at sign-in, or a refresh). They appear in the audit line and the logs.
const (
	// CodeIdPRefused: the IdP answered with an OAuth error (invalid_grant,
	// invalid_client, …): it will not honour this code or grant.
	CodeIdPRefused = "idp_refused"
	// CodeIdPUnreachable: no usable answer — connection refused or reset,
	// DNS failure, a 5xx or 429 answer, temporarily_unavailable.
	CodeIdPUnreachable = "idp_unreachable"
	// CodeIdPTimeout: the IdP did not answer within the HTTP client's
	// timeout (10 s by default), e.g. a hung IdP.
	CodeIdPTimeout = "idp_timeout"
	// CodeIdPMisconfigured: the IdP's discovery document cannot be used
	// for sign-in (IdPMisconfiguredError): an administrator must act.
	CodeIdPMisconfigured = "idp_misconfigured"
)

// idpFailure is what went wrong talking to the IdP.
type idpFailure struct {
	code string // one of the Code* constants above
	// oauthError is the IdP's OAuth error code when it refused,
	// sanitized for display.
	oauthError string
}

// classifyIdPError tells an IdP that refused (an OAuth error response,
// oauth2.RetrieveError with a 4xx status) from one that could not be
// reached or did not answer in time. Anything that is not a refusal counts
// as unreachable: it says nothing about the user's code or grant.
func classifyIdPError(err error) idpFailure {
	if errors.As(err, new(*IdPMisconfiguredError)) {
		return idpFailure{code: CodeIdPMisconfigured}
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		oauthErr := sanitizeText(re.ErrorCode)
		if len(oauthErr) > 64 {
			oauthErr = oauthErr[:64]
		}
		if status >= 500 || status == http.StatusTooManyRequests || oauthErr == "temporarily_unavailable" || oauthErr == "server_error" {
			return idpFailure{code: CodeIdPUnreachable, oauthError: oauthErr}
		}
		return idpFailure{code: CodeIdPRefused, oauthError: oauthErr}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return idpFailure{code: CodeIdPTimeout}
	}
	return idpFailure{code: CodeIdPUnreachable}
}

// idpSignInError is the sign-in error page for a failed request to the IdP
// (discovery or the code exchange): a discovery document that cannot be
// used is an administrator's problem (502, retrying will not help), a
// refusal is the sign-in's fault (400, start again), an unreachable or
// hung IdP is not (503 or 504, try again).
func idpSignInError(err error) *SignInError {
	f := classifyIdPError(err)
	var e *SignInError
	switch f.code {
	case CodeIdPMisconfigured:
		var mis *IdPMisconfiguredError
		errors.As(err, &mis)
		e = signInError(http.StatusBadGateway, f.code,
			"The identity provider is not set up for sign-in here: "+strings.Join(mis.Problems, "; ")+
				". Trying again will not help: an administrator must fix the identity provider or ztproxy's idps configuration (ztproxy check-config --online shows the same).", err)
		e.Title = "Identity provider not set up for sign-in"
	case CodeIdPRefused:
		why := ""
		if f.oauthError != "" {
			why = " (" + f.oauthError + ")"
		}
		e = signInError(http.StatusBadRequest, f.code,
			fmt.Sprintf("The identity provider refused the sign-in code%s. It may have expired or been used already. Start again.", why), err)
		e.Title = "Sign-in refused by the identity provider"
	case CodeIdPTimeout:
		e = signInError(http.StatusGatewayTimeout, f.code,
			"The identity provider did not answer in time, so the sign-in could not be completed. Nothing is wrong with your account: try again in a moment.", err)
		e.Title = "Identity provider not responding"
	default:
		e = signInError(http.StatusServiceUnavailable, f.code,
			"The identity provider cannot be reached right now, so the sign-in could not be completed. Nothing is wrong with your account: try again in a moment.", err)
		e.Title = "Identity provider unreachable"
	}
	return e
}

// authorizationError is the page for an error response to the
// authorization request (RFC 6749 section 4.1.2.1): the IdP refused the
// sign-in (access_denied, login_required, …, 400), unless it says it is
// temporarily unable to handle it (503).
func authorizationError(oauthErr, description string) *SignInError {
	if len(oauthErr) > 64 {
		oauthErr = oauthErr[:64]
	}
	if oauthErr == "temporarily_unavailable" || oauthErr == "server_error" {
		e := signInError(http.StatusServiceUnavailable, CodeIdPUnreachable,
			"The identity provider could not handle the sign-in right now ("+oauthErr+"). Try again in a moment.", errors.New(description))
		e.Title = "Identity provider unavailable"
		return e
	}
	e := signInError(http.StatusBadRequest, "idp_error", "The identity provider refused the sign-in: "+oauthErr+".", errors.New(description))
	e.Title = "Sign-in refused by the identity provider"
	return e
}
