package portal

import (
	"net/http"
	"net/url"
	"strings"

	"ztproxy/authn"
	"ztproxy/decide"
)

// handleLogin starts a sign-in: /.ztp/login?rd=<return URL>&idp=<name>.
func (pt *Portal) handleLogin(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	return pt.startSignIn(w, r, x, authn.LoginPath, func(b decide.BrowserAuth, q url.Values) (string, authn.LoginOptions, error) {
		return q.Get("idp"), authn.LoginOptions{MaxAge: -1}, nil
	})
}

// handleStepUp starts a step-up sign-in at the IdP
// (/.ztp/stepup?rd=<url>&req=<requirement>&idp=<name>): prompt=login,
// max_age and acr_values per the requirement and the IdP's settings.
func (pt *Portal) handleStepUp(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	return pt.startSignIn(w, r, x, decide.StepUpPath, func(b decide.BrowserAuth, q url.Values) (string, authn.LoginOptions, error) {
		req, idp := q.Get("req"), q.Get("idp")
		if req != authn.StepUpMFA && req != authn.StepUpReauth && !strings.HasPrefix(req, "acr:") {
			return "", authn.LoginOptions{}, &decide.Error{Status: http.StatusBadRequest, Code: "bad_step_up", Msg: "unknown verification requirement"}
		}
		if idp == "" {
			idp = b.DefaultIdP()
		}
		return idp, b.StepUpRequest(idp, req), nil
	})
}

// startSignIn sends the browser to the IdP. Sign-in cookies live on the
// external origin, so a request for another host is bounced there first.
func (pt *Portal) startSignIn(w http.ResponseWriter, r *http.Request, x *decide.Exchange, path string,
	options func(decide.BrowserAuth, url.Values) (string, authn.LoginOptions, error)) error {
	b := x.Engine.Config().Browser
	if b == nil {
		return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "browser sign-in is not configured"}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return decide.ErrMethod
	}
	if !onExternalHost(x.Engine, r) {
		http.Redirect(w, r, x.Engine.Issuer()+path+"?"+r.URL.RawQuery, http.StatusFound)
		return nil
	}
	q := r.URL.Query()
	idp, opts, err := options(b, q)
	if err != nil {
		return err
	}
	location, cookies, err := b.LoginRedirect(r.Context(), r, idp, q.Get("rd"), opts)
	if err != nil {
		return err
	}
	for _, c := range cookies {
		http.SetCookie(w, c)
	}
	http.Redirect(w, r, location, http.StatusFound)
	return nil
}

// handleCallback completes a sign-in and returns the browser to where it
// was going.
func (pt *Portal) handleCallback(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	b := x.Engine.Config().Browser
	if b == nil {
		return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "browser sign-in is not configured"}
	}
	if r.Method != http.MethodGet {
		return decide.ErrMethod
	}
	res, err := b.Callback(r.Context(), r, x.RC.Device)
	for _, c := range res.Cookies {
		http.SetCookie(w, c)
	}
	if err != nil {
		return err
	}
	x.RC.Principal = res.Principal
	pt.log.Info("signed in", "principal", res.Principal.ID, "idp", res.Principal.IdP, "request_id", x.RC.RequestID)
	http.Redirect(w, r, res.ReturnTo, http.StatusFound)
	return nil
}

// handleLogout ends the session (GET or POST) and sends the browser to
// the IdP's sign-out.
func (pt *Portal) handleLogout(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	b := x.Engine.Config().Browser
	if b == nil {
		return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "browser sign-in is not configured"}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return decide.ErrMethod
	}
	res, err := b.Logout(r.Context(), r)
	for _, c := range res.Cookies {
		http.SetCookie(w, c)
	}
	if err != nil {
		return &decide.Error{Status: http.StatusServiceUnavailable, Code: "logout_failed", Msg: "the session could not be revoked; try again", Err: err}
	}
	if res.Pending {
		// Issue 22.6: say what happened instead of a 503 that suggests
		// nothing was done, or a redirect that suggests all was done.
		return &decide.Error{Status: http.StatusAccepted, Code: "revocation_pending", Title: "Signed out on this server",
			Msg:  "You are signed out here: this server refuses your session from now on. The shared session store cannot be reached right now, so other servers of this service may accept a copy of your session until it is back; the sign-out is retried automatically and reaches them then.",
			Link: res.Location, LinkText: "Finish signing out"}
	}
	http.Redirect(w, r, res.Location, http.StatusFound)
	return nil
}

// onExternalHost reports whether the request is for the proxy's own
// external origin, where the sign-in cookies live.
func onExternalHost(eng *decide.Engine, r *http.Request) bool {
	ext := eng.Config().ExternalURL
	return decide.CanonicalHost(r.Host, r.TLS != nil) == decide.CanonicalHost(ext.Host, ext.Scheme == "https")
}
