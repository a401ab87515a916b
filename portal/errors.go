package portal

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/identity"
)

// msgStoreUnavailable answers a browser request whose session could not
// be checked or saved because the session store is unreachable
// (authn.ErrStoreUnavailable): 503, nothing granted.
const msgStoreUnavailable = "your session could not be checked because the session store cannot be reached right now; nothing was granted, try again in a moment"

// WriteError renders err for the client: a WWW-Authenticate challenge for
// bearer failures, JSON for API callers, a page for browsers. Internal
// details never reach the client; the request id ties the page to the
// audit log.
func WriteError(w http.ResponseWriter, r *http.Request, err error, requestID string) int {
	status, code := decide.StatusOf(err)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	var be *authn.BearerError
	var de *decide.Denied
	var ln *decide.LoginNeeded
	var se *authn.SignInError
	msg := http.StatusText(status)
	var reasons []string
	if errors.As(err, &ln) {
		for _, c := range ln.Clear {
			http.SetCookie(w, c)
		}
		h.Set("X-Ztp-Login", ln.Location)
		if decide.IsNavigation(r) {
			h.Set("Location", ln.Location)
			w.WriteHeader(http.StatusFound)
			return http.StatusFound
		}
		msg = "sign-in required: open " + ln.Location
	}
	var su *decide.StepUpNeeded
	if errors.As(err, &su) {
		if decide.IsNavigation(r) {
			h.Set("Location", su.Location)
			w.WriteHeader(http.StatusFound)
			return http.StatusFound
		}
		h.Set("X-Ztp-Step-Up", su.Location)
		msg = "this action needs additional verification; verify, then retry it"
		reasons = su.Decision.Reasons
		if wantsHTML(r) {
			renderPage(w, http.StatusForbidden, pageData{Title: "Additional verification needed", Message: msg, Reasons: reasons,
				Code: "step_up", RequestID: requestID, Link: su.Location, LinkText: "Verify now"})
			return http.StatusForbidden
		}
	}
	switch {
	case errors.As(err, &se):
		msg = se.Description
	case errors.As(err, &be):
		h.Set("WWW-Authenticate", decide.BearerChallenge(be.Code, be.Description))
		msg = be.Description
	case errors.As(err, &de):
		reasons = append([]string(nil), de.Decision.Reasons...)
		if len(de.Decision.PolicyIDs) > 0 {
			reasons = append(reasons, "decided by policy "+strings.Join(de.Decision.PolicyIDs, ", "))
		}
		if de.Decision.Effect == identity.StepUp {
			msg = "additional authentication is required"
			if de.Bearer {
				h.Set("WWW-Authenticate", decide.StepUpChallenge(de.Decision, de.Hint))
			}
		} else {
			msg = "access denied by policy"
		}
	default:
		if rl := (*decide.RateLimited)(nil); errors.As(err, &rl) {
			h.Set("Retry-After", strconv.Itoa(rl.RetryAfterSeconds()))
			msg = "too many requests; retry after the time in Retry-After"
		}
		if he := (*decide.Error)(nil); errors.As(err, &he) {
			msg = he.Msg
		} else if code == decide.CodeStoreUnavailable {
			msg = msgStoreUnavailable
		}
		if status == http.StatusUnauthorized && code == decide.ErrNoClientCert.Code {
			h.Set("WWW-Authenticate", `Bearer error="invalid_request", error_description="client certificate required"`)
		}
	}
	if IsGRPC(r) {
		return writeGRPCError(w, status, code, msg, requestID)
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
// a link to start again (unless the proxy itself failed), an Error's
// title and link when it has them, a policy denial's explanation.
func errorPage(err error, status int, code, msg, requestID string, reasons []string) pageData {
	d := pageData{Status: status, Title: pageTitle(status, code), Message: msg, Code: code, RequestID: requestID, Reasons: reasons}
	var se *authn.SignInError
	var he *decide.Error
	var de *decide.Denied
	switch {
	case errors.As(err, &de) && de.Decision.Effect == identity.Deny && de.Cause == nil:
		denialPage(&d, de)
	case errors.As(err, &se):
		if se.Title != "" {
			d.Title = se.Title
		}
		if status < 500 || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout {
			d.Link, d.LinkText = "/", "Start again"
		}
	case errors.As(err, &he):
		if he.Title != "" {
			d.Title = he.Title
		}
		d.Link, d.LinkText = he.Link, he.LinkText
	}
	return d
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

func wantsHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html")
}

// denialPage explains a policy denial to the person refused (issue 15.9):
// who they are signed in as, why, who the route is for (the @reason of
// its permits; permits without one stay private), what to do next, and
// links to whoami and to sign in with another account.
func denialPage(d *pageData, de *decide.Denied) {
	p := de.Principal
	switch {
	case p.Kind == identity.KindUser:
		who := displayUser(p)
		if p.Name != "" && p.Email != "" {
			who += " (" + p.Name + ")"
		}
		d.Message = "You are signed in as " + who + ", and policy does not allow you this request."
	case p.Kind == identity.KindService:
		d.Message = "You are identified as " + p.ID + ", and policy does not allow this request."
	default:
		d.Message = "Policy does not allow this request."
	}
	var b strings.Builder
	_ = denialTemplate.Execute(&b, struct {
		Hints   []string
		Browser bool
	}{de.Decision.Hints, p.AuthKind == identity.AuthBrowser})
	d.Body = template.HTML(b.String()) // produced by html/template: already escaped
	if p.AuthKind == identity.AuthBrowser {
		d.Link, d.LinkText = "/.ztp/whoami", "Who am I"
		d.Links = []pageLink{{URL: authn.LogoutPath, Text: "Sign in as someone else"}}
	}
}

var denialTemplate = template.Must(template.New("denial").Parse(`
{{if .Hints}}<h2>Who may use this</h2><ul>{{range .Hints}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>What you can do</h2>
<p>If you need access, ask your administrator, and give them the request id below: it names this decision in the
audit log.{{if .Browser}} If you meant to use another account, sign in as someone else. <b>Who am I</b> shows your
identity, groups and the applications you may use.{{end}}</p>`))
