package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"ztproxy/authn"
	"ztproxy/identity"
)

// serveInternal answers the proxy's own /.ztp/* endpoints on the public
// listener. Unknown /.ztp/ paths are 404 and never forwarded.
func (s *Server) serveInternal(w http.ResponseWriter, r *http.Request, x *exchange) {
	x.rc.Route = "ztp"
	x.rc.Path = r.URL.Path
	x.rc.Host = canonicalHost(r.Host, r.TLS != nil)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// Sign-in, callback and sign-out are security events: audit them too,
	// exactly once, also when the handler panics (issue 22.3).
	var audit *auditOnce
	securityEvent := false
	switch r.URL.Path {
	case authn.LoginPath, authn.CallbackPath, authn.LogoutPath, StepUpPath,
		webauthnFinishPath, enrollFinishPath, WebAuthnRemovePath:
		securityEvent = true
		audit = &auditOnce{s: s, x: x, start: x.rc.Time}
	case AWSCredentialsPath, AWSConsolePath, AWSCLIPath:
		audit = &auditOnce{s: s, x: x, start: x.rc.Time}
	}
	if audit != nil {
		defer audit.onPanic()
	}
	err := s.internalEndpoint(w, r, x)
	if err != nil {
		x.status = writeError(w, r, err, x.rc.RequestID)
		_, x.errCode = statusOf(err)
		if !errors.As(err, new(*loginNeeded)) {
			s.log.Info("ztp endpoint error", "path", r.URL.Path, "request_id", x.rc.RequestID, "err", err)
		}
	} else if x.status == 0 {
		x.status = http.StatusFound
	}
	if audit != nil {
		if securityEvent {
			x.decision.Effect = identity.Allow
		}
		audit.finish(err)
	}
}

// internalEndpoint runs the handler of a /.ztp/ path.
func (s *Server) internalEndpoint(w http.ResponseWriter, r *http.Request, x *exchange) error {
	switch path := r.URL.Path; {
	case isWebAuthnPath(path):
		return s.serveWebAuthn(w, r, x)
	case path == "/.ztp/jwks.json":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return errMethod
		}
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(s.signer.JWKS())
		x.status = http.StatusOK
		return nil
	case path == authn.LoginPath:
		return s.handleLogin(w, r, x)
	case path == AWSCredentialsPath:
		return s.handleAWSCredentials(w, r, x)
	case path == AWSConsolePath:
		return s.handleAWSConsole(w, r, x)
	case path == AWSCLIPath:
		return s.handleAWSCLI(w, r, x)
	case path == StepUpPath:
		return s.handleStepUp(w, r, x)
	case path == authn.CallbackPath:
		return s.handleCallback(w, r, x)
	case path == authn.LogoutPath:
		return s.handleLogout(w, r, x)
	case path == authn.SignedOutPath:
		renderPage(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out. Close this tab, or sign in again to continue.", Link: "/", LinkText: "Sign in again"})
		x.status = http.StatusOK
		return nil
	case path == "/.ztp/whoami":
		return s.handleWhoami(w, r, x)
	case path == "/.ztp/verify":
		return s.handleVerify(w, r, x)
	}
	return &httpError{status: http.StatusNotFound, code: "not_found", msg: "not found"}
}

var errMethod = &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "method not allowed"}

// handleLogin starts a sign-in: /.ztp/login?rd=<return URL>&idp=<name>.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, x *exchange) error {
	return s.startSignIn(w, r, x, authn.LoginPath, func(b BrowserAuth, q url.Values) (string, authn.LoginOptions, error) {
		return q.Get("idp"), authn.LoginOptions{MaxAge: -1}, nil
	})
}

// handleStepUp starts a step-up sign-in at the IdP
// (/.ztp/stepup?rd=<url>&req=<requirement>&idp=<name>): prompt=login,
// max_age and acr_values per the requirement and the IdP's settings.
func (s *Server) handleStepUp(w http.ResponseWriter, r *http.Request, x *exchange) error {
	return s.startSignIn(w, r, x, StepUpPath, func(b BrowserAuth, q url.Values) (string, authn.LoginOptions, error) {
		req, idp := q.Get("req"), q.Get("idp")
		if req != authn.StepUpMFA && req != authn.StepUpReauth && !strings.HasPrefix(req, "acr:") {
			return "", authn.LoginOptions{}, &httpError{status: http.StatusBadRequest, code: "bad_step_up", msg: "unknown verification requirement"}
		}
		if idp == "" {
			idp = b.DefaultIdP()
		}
		return idp, b.StepUpRequest(idp, req), nil
	})
}

// startSignIn sends the browser to the IdP. Sign-in cookies live on the
// external origin, so a request for another host is bounced there first.
func (s *Server) startSignIn(w http.ResponseWriter, r *http.Request, x *exchange, path string,
	options func(BrowserAuth, url.Values) (string, authn.LoginOptions, error)) error {
	b := x.snap.cfg.Browser
	if b == nil {
		return &httpError{status: http.StatusNotFound, code: "not_found", msg: "browser sign-in is not configured"}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errMethod
	}
	if !x.snap.onExternalHost(r) {
		http.Redirect(w, r, x.snap.issuer+path+"?"+r.URL.RawQuery, http.StatusFound)
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
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request, x *exchange) error {
	b := x.snap.cfg.Browser
	if b == nil {
		return &httpError{status: http.StatusNotFound, code: "not_found", msg: "browser sign-in is not configured"}
	}
	if r.Method != http.MethodGet {
		return errMethod
	}
	res, err := b.Callback(r.Context(), r, x.rc.Device)
	for _, c := range res.Cookies {
		http.SetCookie(w, c)
	}
	if err != nil {
		return err
	}
	x.rc.Principal = res.Principal
	s.log.Info("signed in", "principal", res.Principal.ID, "idp", res.Principal.IdP, "request_id", x.rc.RequestID)
	http.Redirect(w, r, res.ReturnTo, http.StatusFound)
	return nil
}

// handleLogout ends the session (GET or POST) and sends the browser to
// the IdP's sign-out.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, x *exchange) error {
	b := x.snap.cfg.Browser
	if b == nil {
		return &httpError{status: http.StatusNotFound, code: "not_found", msg: "browser sign-in is not configured"}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return errMethod
	}
	res, err := b.Logout(r.Context(), r)
	for _, c := range res.Cookies {
		http.SetCookie(w, c)
	}
	if err != nil {
		return &httpError{status: http.StatusServiceUnavailable, code: "logout_failed", msg: "the session could not be revoked; try again", err: err}
	}
	if res.Pending {
		// Issue 22.6: say what happened instead of a 503 that suggests
		// nothing was done, or a redirect that suggests all was done.
		return &httpError{status: http.StatusAccepted, code: "revocation_pending", title: "Signed out on this server",
			msg:  "You are signed out here: this server refuses your session from now on. The shared session store cannot be reached right now, so other servers of this service may accept a copy of your session until it is back; the sign-out is retried automatically and reaches them then.",
			link: res.Location, linkText: "Finish signing out"}
	}
	http.Redirect(w, r, res.Location, http.StatusFound)
	return nil
}

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json") && !strings.Contains(r.Header.Get("Accept"), "text/html")
}
