package decide

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"ztproxy/authn"
	"ztproxy/identity"
)

// BrowserAuth signs users in and authenticates browser sessions.
type BrowserAuth interface {
	Authenticate(ctx context.Context, r *http.Request, device identity.Device) (authn.Result, error)
	LoginRedirect(ctx context.Context, r *http.Request, idp, returnTo string, opts authn.LoginOptions) (string, []*http.Cookie, error)
	Callback(ctx context.Context, r *http.Request, device identity.Device) (authn.CallbackResult, error)
	Logout(ctx context.Context, r *http.Request) (authn.LogoutResult, error)
	CookieName() string
	DefaultIdP() string
	StepUpRequest(idp, requirement string) authn.LoginOptions
	// IDToken is a session's current ID token (web identity for STS).
	IDToken(ctx context.Context, sessionID string) (string, error)
}

// Where the engine sends a browser to step up; the portal serves them.
const (
	// StepUpPath starts a step-up sign-in at the IdP:
	// /.ztp/stepup?rd=<url>&req=<requirement>.
	StepUpPath = "/.ztp/stepup"
	// WebAuthnStepUpPath verifies a security key or passkey registered
	// with ztproxy: /.ztp/stepup/webauthn?rd=<url>.
	WebAuthnStepUpPath = "/.ztp/stepup/webauthn"
)

// StepUpNeeded sends a browser to prove more: a redirect for a page load,
// an explanatory page with a retry link for anything else (a blocked
// POST cannot be replayed after a redirect).
type StepUpNeeded struct {
	Location string
	Decision identity.Decision
}

func (e *StepUpNeeded) Error() string {
	return "step-up required: " + strings.Join(e.Decision.StepUp, ",")
}

// browserStepUp turns a step-up decision on a browser route into the
// redirect that satisfies it: an IdP requirement for an acr first (a
// security key keeps the acr, a new IdP sign-in would drop the key), then
// the proxy's own security key check, then MFA at the IdP.
func (e *Engine) browserStepUp(r *http.Request, x *Exchange, d identity.Decision) error {
	req := pickStepUp(d.StepUp)
	p := &x.RC.Principal
	if satisfiedJustNow(p, req, x.RC.Time) {
		// The user has just done what the policy asks and it still
		// says step-up: explain instead of sending them round again.
		d.Effect = identity.Deny
		d.Reasons = append(slices.Clone(d.Reasons), "you completed the extra verification just now, but the policy still does not allow this request")
		return &Denied{Decision: d, Principal: *p, Route: x.Route.Name}
	}
	if req == authn.StepUpWebAuthn {
		if !e.webauthnEnabled() {
			// Only proxy-verified WebAuthn would satisfy this policy
			// and it is not configured: fail closed.
			return &Denied{Decision: d, Principal: *p, Route: x.Route.Name}
		}
		q := url.Values{"rd": {requestURL(r, x)}}
		return &StepUpNeeded{Location: e.issuer + WebAuthnStepUpPath + "?" + q.Encode(), Decision: d}
	}
	q := url.Values{"rd": {requestURL(r, x)}, "req": {req}}
	if x.Route.IdP != "" {
		q.Set("idp", x.Route.IdP)
	}
	return &StepUpNeeded{Location: e.issuer + StepUpPath + "?" + q.Encode(), Decision: d}
}

// pickStepUp chooses which of a decision's requirements to satisfy first.
func pickStepUp(reqs []string) string {
	for _, r := range reqs {
		if strings.HasPrefix(r, "acr:") {
			return r
		}
	}
	if slices.Contains(reqs, authn.StepUpWebAuthn) {
		return authn.StepUpWebAuthn
	}
	if len(reqs) > 0 {
		return reqs[0]
	}
	return authn.StepUpMFA
}

// stepUpLoopWindow: a requirement satisfied this recently that policy
// still asks for is not asked for again.
const stepUpLoopWindow = time.Minute

// satisfiedJustNow reports whether p met req within stepUpLoopWindow.
func satisfiedJustNow(p *identity.Principal, req string, now time.Time) bool {
	if p.AuthTime.IsZero() || now.Sub(p.AuthTime) > stepUpLoopWindow {
		return false
	}
	switch {
	case req == authn.StepUpWebAuthn:
		return slices.Contains(p.AMR, "webauthn")
	case req == authn.StepUpMFA:
		return p.HasMFA()
	case strings.HasPrefix(req, "acr:"):
		return p.ACR == strings.TrimPrefix(req, "acr:")
	}
	return false
}

var _ BrowserAuth = (*authn.Browser)(nil)

// webauthnEnabled reports whether browser sign-in verifies security keys
// itself (*authn.Browser with WebAuthn configured).
func (e *Engine) webauthnEnabled() bool {
	wa, ok := e.cfg.Browser.(interface{ WebAuthnEnabled() bool })
	return ok && wa.WebAuthnEnabled()
}

// LoginNeeded sends a browser to sign-in: a 302 for navigations, a 401
// with the sign-in URL for API-style requests.
type LoginNeeded struct {
	Location string
	Clear    []*http.Cookie
	Reason   string
	Code     string // audit code; "" for login_required
}

// LoginNeededFor sends the browser of a failed session check to sign in,
// returning to returnTo.
func (e *Engine) LoginNeededFor(lre *authn.LoginRequiredError, returnTo, idp string) *LoginNeeded {
	return &LoginNeeded{Location: e.loginURL(returnTo, idp), Clear: lre.Clear, Reason: lre.Reason, Code: lre.Code}
}

func (e *LoginNeeded) Error() string { return "sign-in required: " + e.Reason }

// authenticateBrowser establishes the principal of a browser route from
// its session cookie.
func (e *Engine) authenticateBrowser(r *http.Request, x *Exchange, v *Verdict) error {
	b := e.cfg.Browser
	if b == nil {
		return errNotBrowser
	}
	res, err := b.Authenticate(r.Context(), r, x.RC.Device)
	if err != nil {
		var lre *authn.LoginRequiredError
		if errors.As(err, &lre) {
			return e.LoginNeededFor(lre, requestURL(r, x), x.Route.IdP)
		}
		if errors.Is(err, authn.ErrStoreUnavailable) {
			return err // 503 session_store_unavailable
		}
		return &Error{Status: http.StatusServiceUnavailable, Code: "session_check_failed", Msg: "your session could not be checked right now; try again shortly", Err: err}
	}
	v.SetCookies = res.SetCookies
	x.RC.Principal = res.Principal
	return nil
}

// requestURL rebuilds the absolute URL the browser asked for, for the
// return after sign-in: the canonical path with its ";parameters", if
// the route accepts them.
func requestURL(r *http.Request, x *Exchange) string {
	path := x.RC.Path
	if x.ForwardPath != "" {
		path = x.ForwardPath
	}
	u := url.URL{Scheme: x.Scheme, Host: r.Host, Path: path, RawQuery: r.URL.RawQuery}
	return u.String()
}

// loginURL is the proxy's own sign-in start for a return URL.
func (e *Engine) loginURL(returnTo, idp string) string {
	q := url.Values{"rd": {returnTo}}
	if idp != "" {
		q.Set("idp", idp)
	}
	return e.issuer + authn.LoginPath + "?" + q.Encode()
}

// IsNavigation reports whether a request is a browser page load that can
// follow a redirect to sign-in (rather than an API call that cannot).
func IsNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	accept := r.Header.Get("Accept")
	return accept == "" || strings.Contains(accept, "text/html") || strings.Contains(accept, "*/*")
}
