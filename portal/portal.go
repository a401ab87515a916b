package portal

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/identity"
)

// Options configure the portal.
type Options struct {
	// JWKS returns the key set that verifies X-Ztp-Assertion tokens,
	// served at /.ztp/jwks.json; it changes when the keys rotate.
	JWKS   func() []byte
	Logger *slog.Logger
}

// Portal serves ztproxy's own pages and endpoints under /.ztp/ on the
// public listener: sign-in glue, whoami, step-up and security keys, AWS
// credentials, the key set. It is the only package that renders HTML.
type Portal struct {
	jwks func() []byte
	log  *slog.Logger
}

// New returns the portal.
func New(opts Options) *Portal {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Portal{jwks: opts.JWKS, log: opts.Logger}
}

// Serve answers a /.ztp/ path. The listener has started x (Begin), named
// its route "ztp" and set the headers every /.ztp/ answer carries.
// Unknown paths are 404 and never forwarded.
func (pt *Portal) Serve(w http.ResponseWriter, r *http.Request, x *decide.Exchange) {
	// Sign-in, callback and sign-out are security events: audit them too,
	// exactly once, also when the handler panics (issue 22.3).
	var audit *decide.AuditOnce
	securityEvent := false
	switch r.URL.Path {
	case authn.LoginPath, authn.CallbackPath, authn.LogoutPath, decide.StepUpPath, authn.BackchannelLogoutPath, SecurityEventsPath,
		WebAuthnFinishPath, EnrollFinishPath, WebAuthnRemovePath,
		DeviceEnrollPath, DeviceRemovePath, DeviceRenewPath, DeviceReportPath:
		securityEvent = true
		a := decide.NewAuditOnce(x, x.RC.Time)
		audit = &a
	case AWSCredentialsPath, AWSConsolePath, AWSCLIPath:
		a := decide.NewAuditOnce(x, x.RC.Time)
		audit = &a
	}
	if audit == nil && isAdminPath(r.URL.Path) {
		// Every operator API call is audited with the operator.
		securityEvent = true
		a := decide.NewAuditOnce(x, x.RC.Time)
		audit = &a
	}
	if audit != nil {
		defer audit.OnPanic()
	}
	err := pt.internalEndpoint(w, r, x)
	if err != nil {
		x.Status = WriteError(w, r, err, x.RC.RequestID)
		_, x.ErrCode = decide.StatusOf(err)
		if !errors.As(err, new(*decide.LoginNeeded)) {
			pt.log.Info("ztp endpoint error", "path", r.URL.Path, "request_id", x.RC.RequestID, "err", err)
		}
	} else if x.Status == 0 {
		x.Status = http.StatusFound
	}
	if audit != nil {
		if securityEvent {
			x.Decision.Effect = identity.Allow
		}
		if err == nil && x.ErrCode != "" {
			// The handler answered a refusal itself (back-channel logout's
			// spec-defined JSON): the audit line still names it.
			err = &decide.Error{Status: x.Status, Code: x.ErrCode, Msg: x.ErrCode}
		}
		audit.Finish(err)
	}
}

// internalEndpoint runs the handler of a /.ztp/ path.
func (pt *Portal) internalEndpoint(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	switch path := r.URL.Path; {
	case isAdminPath(path):
		return pt.handleAdmin(w, r, x)
	case isWebAuthnPath(path):
		return pt.serveWebAuthn(w, r, x)
	case isDevicesPath(path):
		return pt.serveDevices(w, r, x)
	case path == "/.ztp/jwks.json":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return decide.ErrMethod
		}
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(pt.jwks())
		x.Status = http.StatusOK
		return nil
	case path == authn.LoginPath:
		return pt.handleLogin(w, r, x)
	case path == AWSCredentialsPath:
		return pt.handleAWSCredentials(w, r, x)
	case path == AWSConsolePath:
		return pt.handleAWSConsole(w, r, x)
	case path == AWSCLIPath:
		return pt.handleAWSCLI(w, r, x)
	case path == decide.StepUpPath:
		return pt.handleStepUp(w, r, x)
	case path == authn.CallbackPath:
		return pt.handleCallback(w, r, x)
	case path == authn.LogoutPath:
		return pt.handleLogout(w, r, x)
	case path == authn.BackchannelLogoutPath:
		return pt.handleBackchannelLogout(w, r, x)
	case path == SecurityEventsPath:
		return pt.handleSecurityEvents(w, r, x)
	case path == authn.SignedOutPath:
		renderPage(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out. Close this tab, or sign in again to continue.", Link: "/", LinkText: "Sign in again"})
		x.Status = http.StatusOK
		return nil
	case path == "/.ztp/whoami":
		return pt.handleWhoami(w, r, x)
	}
	return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "not found"}
}

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json") && !strings.Contains(r.Header.Get("Accept"), "text/html")
}
