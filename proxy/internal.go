package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/identity"
)

// serveInternal answers the proxy's own /.ztp/* endpoints on the public
// listener. Unknown /.ztp/ paths are 404 and never forwarded.
func (s *Server) serveInternal(w http.ResponseWriter, r *http.Request, x *decide.Exchange) {
	x.RC.Route = "ztp"
	x.RC.Path = r.URL.Path
	x.RC.Host = decide.CanonicalHost(r.Host, r.TLS != nil)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// Sign-in, callback and sign-out are security events: audit them too,
	// exactly once, also when the handler panics (issue 22.3).
	var audit *decide.AuditOnce
	securityEvent := false
	switch r.URL.Path {
	case authn.LoginPath, authn.CallbackPath, authn.LogoutPath, decide.StepUpPath,
		webauthnFinishPath, enrollFinishPath, WebAuthnRemovePath:
		securityEvent = true
		a := decide.NewAuditOnce(x, x.RC.Time)
		audit = &a
	case AWSCredentialsPath, AWSConsolePath, AWSCLIPath:
		a := decide.NewAuditOnce(x, x.RC.Time)
		audit = &a
	}
	if audit != nil {
		defer audit.OnPanic()
	}
	err := s.internalEndpoint(w, r, x)
	if err != nil {
		x.Status = writeError(w, r, err, x.RC.RequestID)
		_, x.ErrCode = decide.StatusOf(err)
		if !errors.As(err, new(*decide.LoginNeeded)) {
			s.log.Info("ztp endpoint error", "path", r.URL.Path, "request_id", x.RC.RequestID, "err", err)
		}
	} else if x.Status == 0 {
		x.Status = http.StatusFound
	}
	if audit != nil {
		if securityEvent {
			x.Decision.Effect = identity.Allow
		}
		audit.Finish(err)
	}
}

// internalEndpoint runs the handler of a /.ztp/ path.
func (s *Server) internalEndpoint(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	switch path := r.URL.Path; {
	case isWebAuthnPath(path):
		return s.serveWebAuthn(w, r, x)
	case path == "/.ztp/jwks.json":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return decide.ErrMethod
		}
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(s.signer.JWKS())
		x.Status = http.StatusOK
		return nil
	case path == authn.LoginPath:
		return s.handleLogin(w, r, x)
	case path == AWSCredentialsPath:
		return s.handleAWSCredentials(w, r, x)
	case path == AWSConsolePath:
		return s.handleAWSConsole(w, r, x)
	case path == AWSCLIPath:
		return s.handleAWSCLI(w, r, x)
	case path == decide.StepUpPath:
		return s.handleStepUp(w, r, x)
	case path == authn.CallbackPath:
		return s.handleCallback(w, r, x)
	case path == authn.LogoutPath:
		return s.handleLogout(w, r, x)
	case path == authn.SignedOutPath:
		renderPage(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out. Close this tab, or sign in again to continue.", Link: "/", LinkText: "Sign in again"})
		x.Status = http.StatusOK
		return nil
	case path == "/.ztp/whoami":
		return s.handleWhoami(w, r, x)
	case path == "/.ztp/verify":
		return s.handleVerify(w, r, x)
	}
	return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "not found"}
}

// handleLogin starts a sign-in: /.ztp/login?rd=<return URL>&idp=<name>.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	return s.startSignIn(w, r, x, authn.LoginPath, func(b decide.BrowserAuth, q url.Values) (string, authn.LoginOptions, error) {
		return q.Get("idp"), authn.LoginOptions{MaxAge: -1}, nil
	})
}

// handleStepUp starts a step-up sign-in at the IdP
// (/.ztp/stepup?rd=<url>&req=<requirement>&idp=<name>): prompt=login,
// max_age and acr_values per the requirement and the IdP's settings.
func (s *Server) handleStepUp(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	return s.startSignIn(w, r, x, decide.StepUpPath, func(b decide.BrowserAuth, q url.Values) (string, authn.LoginOptions, error) {
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
func (s *Server) startSignIn(w http.ResponseWriter, r *http.Request, x *decide.Exchange, path string,
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
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
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
	s.log.Info("signed in", "principal", res.Principal.ID, "idp", res.Principal.IdP, "request_id", x.RC.RequestID)
	http.Redirect(w, r, res.ReturnTo, http.StatusFound)
	return nil
}

// handleLogout ends the session (GET or POST) and sends the browser to
// the IdP's sign-out.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
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

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json") && !strings.Contains(r.Header.Get("Accept"), "text/html")
}

// onExternalHost reports whether the request is for the proxy's own
// external origin, where the sign-in cookies live.
func onExternalHost(eng *decide.Engine, r *http.Request) bool {
	ext := eng.Config().ExternalURL
	return decide.CanonicalHost(r.Host, r.TLS != nil) == decide.CanonicalHost(ext.Host, ext.Scheme == "https")
}
