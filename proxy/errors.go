package proxy

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

// httpError is an error that already knows its status. Handlers return
// errors; writeError is the only place that turns them into responses.
type httpError struct {
	status int
	code   string // short machine-readable code
	msg    string // safe to show to the client
	err    error
	// title, link and linkText, when set, are the HTML page's headline
	// and its one button.
	title, link, linkText string
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

var (
	errNoRoute      = &httpError{status: http.StatusNotFound, code: "no_route", msg: "no route for this host and path"}
	errBadHost      = &httpError{status: http.StatusBadRequest, code: "bad_host", msg: "missing or malformed Host"}
	errPath         = &httpError{status: http.StatusBadRequest, code: "bad_path", msg: "malformed or ambiguous request path", err: errBadPath}
	errNoClientCert = &httpError{status: http.StatusUnauthorized, code: "client_certificate_required", msg: "a verified client certificate is required"}
	errWebSocket    = &httpError{status: http.StatusForbidden, code: "websocket_not_allowed", msg: "WebSocket upgrades are not enabled on this route"}
	errNotBrowser   = &httpError{status: http.StatusUnauthorized, code: "login_required", msg: "browser sign-in is not configured for this route"}
	// errPathParams: issue 12.2, servlet containers strip ";parameters"
	// and read "..;" as "..", so only routes that opt in accept them.
	errPathParams = &httpError{status: http.StatusBadRequest, code: "path_parameters_not_allowed", msg: "path parameters (;) are not allowed on this route", err: errBadPath}
	// errBadMethod: issue 12.4, one spelling of a method for policy and
	// upstream alike.
	errBadMethod = &httpError{status: http.StatusBadRequest, code: "bad_method", msg: "the method must be an upper-case HTTP method"}
)

// denyError carries a policy decision that is not Allow.
type denyError struct {
	decision identity.Decision
	bearer   bool // caller authenticated with a bearer token
	cause    error
	// hint is the caller's IdP step-up settings, for the RFC 9470
	// challenge's acr_values and max_age.
	hint StepUpHint
}

// StepUpHint is an IdP's step-up settings: what to ask for and how fresh.
type StepUpHint struct {
	ACRValues string
	MaxAge    time.Duration
}

func (e *denyError) Error() string {
	if e.cause != nil {
		return "denied: could not decide: " + e.cause.Error()
	}
	return "denied by policy " + strings.Join(e.decision.PolicyIDs, ",")
}

func (e *denyError) Unwrap() error { return e.cause }

// codeStoreUnavailable and msgStoreUnavailable answer a browser request
// whose session could not be checked or saved because the session store is
// unreachable (authn.ErrStoreUnavailable): 503, nothing granted.
const (
	codeStoreUnavailable = "session_store_unavailable"
	msgStoreUnavailable  = "your session could not be checked because the session store cannot be reached right now; nothing was granted, try again in a moment"
)

// statusOf maps an error to its HTTP status and a short code for logs and
// metrics.
func statusOf(err error) (int, string) {
	var he *httpError
	var be *authn.BearerError
	var de *denyError
	var ln *loginNeeded
	var se *authn.SignInError
	switch {
	case errors.As(err, &he):
		return he.status, he.code
	case errors.As(err, &ln):
		if ln.code != "" {
			return http.StatusUnauthorized, ln.code
		}
		return http.StatusUnauthorized, "login_required"
	case errors.As(err, new(*stepUpNeeded)):
		return http.StatusForbidden, "step_up"
	case errors.As(err, &se):
		return se.Status, se.Code
	case errors.As(err, &be):
		return http.StatusUnauthorized, be.Code
	case errors.Is(err, authn.ErrStoreUnavailable):
		return http.StatusServiceUnavailable, codeStoreUnavailable
	case errors.As(err, &de):
		if de.decision.Effect == identity.StepUp && de.bearer {
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

// writeError renders err for the client: a WWW-Authenticate challenge for
// bearer failures, JSON for API callers, a page for browsers. Internal
// details never reach the client; the request id ties the page to the
// audit log.
func writeError(w http.ResponseWriter, r *http.Request, err error, requestID string) int {
	status, code := statusOf(err)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	var be *authn.BearerError
	var de *denyError
	var ln *loginNeeded
	var se *authn.SignInError
	msg := http.StatusText(status)
	var reasons []string
	if errors.As(err, &ln) {
		for _, c := range ln.clear {
			http.SetCookie(w, c)
		}
		h.Set("X-Ztp-Login", ln.location)
		if isNavigation(r) {
			h.Set("Location", ln.location)
			w.WriteHeader(http.StatusFound)
			return http.StatusFound
		}
		msg = "sign-in required: open " + ln.location
	}
	var su *stepUpNeeded
	if errors.As(err, &su) {
		if isNavigation(r) {
			h.Set("Location", su.location)
			w.WriteHeader(http.StatusFound)
			return http.StatusFound
		}
		h.Set("X-Ztp-Step-Up", su.location)
		msg = "this action needs additional verification; verify, then retry it"
		reasons = su.decision.Reasons
		if wantsHTML(r) {
			renderPage(w, http.StatusForbidden, pageData{Title: "Additional verification needed", Message: msg, Reasons: reasons,
				Code: "step_up", RequestID: requestID, Link: su.location, LinkText: "Verify now"})
			return http.StatusForbidden
		}
	}
	switch {
	case errors.As(err, &se):
		msg = se.Description
	case errors.As(err, &be):
		h.Set("WWW-Authenticate", bearerChallenge(be.Code, be.Description))
		msg = be.Description
	case errors.As(err, &de):
		reasons = append([]string(nil), de.decision.Reasons...)
		if len(de.decision.PolicyIDs) > 0 {
			reasons = append(reasons, "decided by policy "+strings.Join(de.decision.PolicyIDs, ", "))
		}
		if de.decision.Effect == identity.StepUp {
			msg = "additional authentication is required"
			if de.bearer {
				h.Set("WWW-Authenticate", stepUpChallenge(de.decision, de.hint))
			}
		} else {
			msg = "access denied by policy"
		}
	default:
		if he := (*httpError)(nil); errors.As(err, &he) {
			msg = he.msg
		} else if code == codeStoreUnavailable {
			msg = msgStoreUnavailable
		}
		if status == http.StatusUnauthorized && code == errNoClientCert.code {
			h.Set("WWW-Authenticate", `Bearer error="invalid_request", error_description="client certificate required"`)
		}
	}
	if status == 499 {
		return status // the client is gone; nothing to write
	}
	if wantsHTML(r) {
		renderPage(w, status, errorPage(err, status, code, msg, requestID, reasons))
		return status
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"message":%q,"request_id":%q}`+"\n", code, msg, requestID)
	return status
}

// errorPage is the HTML page of an error: a sign-in error's own title and
// a link to start again (unless the proxy itself failed), an httpError's
// title and link when it has them.
func errorPage(err error, status int, code, msg, requestID string, reasons []string) pageData {
	d := pageData{Status: status, Title: pageTitle(status, code), Message: msg, Code: code, RequestID: requestID, Reasons: reasons}
	var se *authn.SignInError
	var he *httpError
	switch {
	case errors.As(err, &se):
		if se.Title != "" {
			d.Title = se.Title
		}
		if status < 500 || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout {
			d.Link, d.LinkText = "/", "Start again"
		}
	case errors.As(err, &he):
		if he.title != "" {
			d.Title = he.title
		}
		d.Link, d.LinkText = he.link, he.linkText
	}
	return d
}

// bearerChallenge renders an RFC 6750 challenge.
func bearerChallenge(code, description string) string {
	return fmt.Sprintf(`Bearer error=%q, error_description=%q`, code, sanitizeQuoted(description))
}

// stepUpChallenge renders an RFC 9470 insufficient_user_authentication
// challenge from the step-up requirements.
func stepUpChallenge(d identity.Decision, hint StepUpHint) string {
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
		c += fmt.Sprintf(`, acr_values=%q`, sanitizeQuoted(strings.Join(acrs, " ")))
	}
	if hint.MaxAge > 0 {
		c += fmt.Sprintf(`, max_age=%d`, int(hint.MaxAge/time.Second))
	}
	return c
}

// sanitizeQuoted keeps a value safe inside a quoted-string (RFC 9110).
func sanitizeQuoted(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}

func wantsHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html")
}

// pageTitle is the headline of an error page.
func pageTitle(status int, code string) string {
	switch {
	case code == "forbidden":
		return "Access denied"
	case code == "insufficient_user_authentication" || status == http.StatusForbidden && code == "step_up":
		return "Additional verification needed"
	case code == "login_required":
		return "Sign-in required"
	case status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return "Temporarily unavailable"
	case status >= 500:
		return "Something went wrong on our side"
	}
	return http.StatusText(status)
}
