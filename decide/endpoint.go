package decide

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"ztproxy/authn"
	"ztproxy/identity"
)

// AuthenticateEndpoint authenticates a caller of a /.ztp/ endpoint (the
// portal's whoami, security key and AWS pages): with its bearer token
// when one is sent, else with the browser session (sending a browser
// without one to sign in, returning to returnTo).
func (e *Engine) AuthenticateEndpoint(r *http.Request, x *Exchange, returnTo string) Verdict {
	var v Verdict
	v.Err = e.authenticateEndpoint(r, x, returnTo, &v)
	return v
}

func (e *Engine) authenticateEndpoint(r *http.Request, x *Exchange, returnTo string, v *Verdict) error {
	if raw, ok := authn.ParseAuthorization(r.Header.Get("Authorization")); ok && e.cfg.Bearer != nil {
		p, err := e.cfg.Bearer.Verify(r.Context(), raw)
		if err != nil {
			return err
		}
		x.RC.Principal, x.RawBearer = p, raw
		return nil
	}
	if e.cfg.Browser == nil {
		return &authn.BearerError{Code: "invalid_request", Description: "a bearer token is required"}
	}
	res, err := e.cfg.Browser.Authenticate(r.Context(), r, x.RC.Device)
	if err != nil {
		var lre *authn.LoginRequiredError
		if errors.As(err, &lre) {
			return e.LoginNeededFor(lre, returnTo, "")
		}
		return err
	}
	v.SetCookies = res.SetCookies
	x.RC.Principal = res.Principal
	return nil
}

// AuthorizeAWSRole lets policy decide on the resource Route::"aws:<role>"
// for a caller AuthenticateEndpoint authenticated, like on any route
// (GET of path), so that AWS credentials exist only after the request
// passed policy.
func (e *Engine) AuthorizeAWSRole(ctx context.Context, x *Exchange, role, path string) error {
	x.RC.Route, x.RC.Method, x.RC.Path = "aws:"+role, http.MethodGet, path
	if scorer := e.cfg.Risk; scorer != nil {
		risk, err := scorer.Score(ctx, &x.RC)
		x.RC.Risk = risk
		if err != nil && risk.Level == "" {
			return &Denied{Decision: identity.Decision{Effect: identity.Deny, Reasons: []string{"risk could not be assessed"}}, Cause: err}
		}
	}
	d, err := e.cfg.Authorizer.Decide(&x.RC)
	if err != nil {
		return &Denied{Decision: identity.Decision{Effect: identity.Deny, Reasons: []string{"policy could not be evaluated"}}, Cause: err}
	}
	x.Decision = d
	if d.Effect != identity.Allow {
		return &Denied{Decision: d, Bearer: x.RawBearer != ""}
	}
	return nil
}

// AssessRisk scores the caller of a portal page for display
// (/.ztp/whoami); the score stays neutral when the scorer could not
// decide at all.
func (e *Engine) AssessRisk(ctx context.Context, x *Exchange) {
	if scorer := e.cfg.Risk; scorer != nil {
		if risk, err := scorer.Score(ctx, &x.RC); err == nil || risk.Level != "" {
			x.RC.Risk = risk
		}
	}
}

// Preview asks policy what it would decide for x's caller on a GET of
// route's prefix, for /.ztp/whoami to show. It grants nothing.
func (e *Engine) Preview(x *Exchange, route *Route) (identity.Decision, error) {
	rc := x.RC
	rc.Route, rc.Method, rc.Host, rc.Path = route.Name, http.MethodGet, route.Host, route.PathPrefix
	return e.cfg.Authorizer.Decide(&rc)
}

// RouteFor returns the route a URL of this proxy leads to, or nil: for a
// portal page that explains what a route asks of the user (the step-up
// pages). It grants nothing.
func (e *Engine) RouteFor(rawURL string) *Route {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil
	}
	host := CanonicalHost(u.Host, u.Scheme == "https")
	rp, err := ParseRequestPath(u.EscapedPath())
	if host == "" || err != nil {
		return nil
	}
	return e.router.match(host, rp.Match)
}
