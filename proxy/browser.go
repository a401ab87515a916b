package proxy

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

// StepUpPath starts a step-up sign-in: /.ztp/stepup?rd=<url>&req=<requirement>.
const StepUpPath = "/.ztp/stepup"

// stepUpNeeded sends a browser to prove more: a redirect for a page load,
// an explanatory page with a retry link for anything else (a blocked
// POST cannot be replayed after a redirect).
type stepUpNeeded struct {
	location string
	decision identity.Decision
}

func (e *stepUpNeeded) Error() string {
	return "step-up required: " + strings.Join(e.decision.StepUp, ",")
}

// browserStepUp turns a step-up decision on a browser route into the
// redirect that satisfies it: an IdP requirement for an acr first (a
// security key keeps the acr, a new IdP sign-in would drop the key), then
// the proxy's own security key check, then MFA at the IdP.
func (s *Server) browserStepUp(r *http.Request, x *exchange, d identity.Decision) error {
	req := pickStepUp(d.StepUp)
	p := &x.rc.Principal
	if satisfiedJustNow(p, req, x.rc.Time) {
		// The user has just done what the policy asks and it still
		// says step-up: explain instead of sending them round again.
		d.Effect = identity.Deny
		d.Reasons = append(slices.Clone(d.Reasons), "you completed the extra verification just now, but the policy still does not allow this request")
		return &denyError{decision: d}
	}
	if req == authn.StepUpWebAuthn {
		if webauthnOf(x.snap) == nil {
			// Only proxy-verified WebAuthn would satisfy this policy
			// and it is not configured: fail closed.
			return &denyError{decision: d}
		}
		q := url.Values{"rd": {requestURL(r, x)}}
		return &stepUpNeeded{location: x.snap.issuer + WebAuthnStepUpPath + "?" + q.Encode(), decision: d}
	}
	q := url.Values{"rd": {requestURL(r, x)}, "req": {req}}
	if x.route.IdP != "" {
		q.Set("idp", x.route.IdP)
	}
	return &stepUpNeeded{location: x.snap.issuer + StepUpPath + "?" + q.Encode(), decision: d}
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

// loginNeeded sends a browser to sign-in: a 302 for navigations, a 401
// with the sign-in URL for API-style requests.
type loginNeeded struct {
	location string
	clear    []*http.Cookie
	reason   string
	code     string // audit code; "" for login_required
}

// loginNeededFor sends the browser of a failed session check to sign in,
// returning to returnTo.
func (snap *snapshot) loginNeededFor(lre *authn.LoginRequiredError, returnTo, idp string) *loginNeeded {
	return &loginNeeded{location: snap.loginURL(returnTo, idp), clear: lre.Clear, reason: lre.Reason, code: lre.Code}
}

func (e *loginNeeded) Error() string { return "sign-in required: " + e.reason }

// authenticateBrowser establishes the principal of a browser route from
// its session cookie.
func (s *Server) authenticateBrowser(w http.ResponseWriter, r *http.Request, x *exchange) error {
	b := x.snap.cfg.Browser
	if b == nil {
		return errNotBrowser
	}
	res, err := b.Authenticate(r.Context(), r, x.rc.Device)
	if err != nil {
		var lre *authn.LoginRequiredError
		if errors.As(err, &lre) {
			return x.snap.loginNeededFor(lre, requestURL(r, x), x.route.IdP)
		}
		if errors.Is(err, authn.ErrStoreUnavailable) {
			return err // 503 session_store_unavailable
		}
		return &httpError{status: http.StatusServiceUnavailable, code: "session_check_failed", msg: "your session could not be checked right now; try again shortly", err: err}
	}
	for _, c := range res.SetCookies {
		http.SetCookie(w, c)
	}
	x.rc.Principal = res.Principal
	return nil
}

// requestURL rebuilds the absolute URL the browser asked for, for the
// return after sign-in: the canonical path with its ";parameters", if
// the route accepts them.
func requestURL(r *http.Request, x *exchange) string {
	path := x.rc.Path
	if x.forwardPath != "" {
		path = x.forwardPath
	}
	u := url.URL{Scheme: x.scheme, Host: r.Host, Path: path, RawQuery: r.URL.RawQuery}
	return u.String()
}

// loginURL is the proxy's own sign-in start for a return URL.
func (snap *snapshot) loginURL(returnTo, idp string) string {
	q := url.Values{"rd": {returnTo}}
	if idp != "" {
		q.Set("idp", idp)
	}
	return snap.issuer + authn.LoginPath + "?" + q.Encode()
}

// isNavigation reports whether a request is a browser page load that can
// follow a redirect to sign-in (rather than an API call that cannot).
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	accept := r.Header.Get("Accept")
	return accept == "" || strings.Contains(accept, "text/html") || strings.Contains(accept, "*/*")
}

// onExternalHost reports whether the request is for the proxy's own
// external origin, where the sign-in cookies live.
func (snap *snapshot) onExternalHost(r *http.Request) bool {
	return canonicalHost(r.Host, r.TLS != nil) == canonicalHost(snap.cfg.ExternalURL.Host, snap.cfg.ExternalURL.Scheme == "https")
}
