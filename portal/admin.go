package portal

import (
	"net/http"
	"strings"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/identity"
)

// AdminPrefix is the operator API's path prefix (issue 17).
const AdminPrefix = "/.ztp/admin/"

// Refusals of the operator API.
var (
	errAdminPlaintext = &decide.Error{Status: http.StatusForbidden, Code: "admin_api_requires_tls",
		Msg: "the operator API is only served over TLS"}
	errAdminAnonymous = &decide.Error{Status: http.StatusUnauthorized, Code: "admin_authentication_required",
		Msg: "the operator API needs a client certificate or a bearer token of an operator"}
	errAdminForbidden = &decide.Error{Status: http.StatusForbidden, Code: "admin_forbidden",
		Msg: "this identity is not an operator of this proxy"}
)

// handleAdmin authenticates the caller of the operator API (a verified
// client certificate, or a bearer token from a configured IdP) and hands
// the call to it when the caller is an operator. Never over plain HTTP,
// never anonymously; the audit line names the operator.
func (pt *Portal) handleAdmin(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	cfg := x.Engine.Config()
	if cfg.Admin == nil {
		return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "the operator API is not enabled"}
	}
	if r.TLS == nil {
		return errAdminPlaintext
	}
	var p identity.Principal
	switch raw, ok := authn.ParseAuthorization(r.Header.Get("Authorization")); {
	case ok && cfg.Bearer != nil:
		var err error
		if p, err = cfg.Bearer.Verify(r.Context(), raw); err != nil {
			return err
		}
	case r.Header.Get("Authorization") != "":
		return errAdminAnonymous
	case x.RC.Device.Present:
		p = identity.Principal{Kind: identity.KindService, ID: x.RC.Device.ID, Subject: x.RC.Device.ID, AuthKind: identity.AuthMTLS}
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="ztproxy-admin"`)
		return errAdminAnonymous
	}
	x.RC.Principal = p
	if !cfg.Admin.Allowed(p) {
		pt.log.Warn("operator API refused a non-operator", "principal", p.ID, "request_id", x.RC.RequestID)
		return errAdminForbidden
	}
	rec := &statusRecorder{ResponseWriter: w}
	cfg.Admin.ServeAdmin(rec, r, p)
	x.Status = rec.status
	return nil
}

// statusRecorder remembers the status an operator API answer wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func isAdminPath(path string) bool { return strings.HasPrefix(path, AdminPrefix) }
