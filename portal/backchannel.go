package portal

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/identity"
)

// backchannelReceiver is the part of browser sign-in that takes
// back-channel logout tokens (authn.Browser).
type backchannelReceiver interface {
	BackchannelLogout(ctx context.Context, raw string) (authn.BackchannelResult, error)
}

// Audit codes of back-channel logout answers (the body is the spec's).
var (
	errLogoutTokenRefused = &decide.Error{Status: http.StatusBadRequest, Code: "invalid_logout_token", Msg: "logout token refused"}
	errBackchannelFailed  = &decide.Error{Status: http.StatusBadRequest, Code: "logout_failed", Msg: "back-channel logout failed"}
)

// maxBackchannelBody bounds the form an IdP posts.
const maxBackchannelBody = 16 << 10

// handleBackchannelLogout is the OpenID Connect Back-Channel Logout 1.0
// receiver (issue 17): a form POST with one logout_token; 200 when every
// session it names has ended, 400 with a JSON error otherwise, never
// cached.
func (pt *Portal) handleBackchannelLogout(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	b, ok := x.Engine.Config().Browser.(backchannelReceiver)
	if !ok {
		return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "browser sign-in is not configured"}
	}
	if r.Method != http.MethodPost {
		return decide.ErrMethod
	}
	w.Header().Set("Cache-Control", "no-store")
	raw, err := readLogoutToken(w, r)
	if err != nil {
		return pt.backchannelAnswer(w, x, authn.BackchannelResult{}, err)
	}
	res, err := b.BackchannelLogout(r.Context(), raw)
	return pt.backchannelAnswer(w, x, res, err)
}

// readLogoutToken reads the form's single logout_token.
func readLogoutToken(w http.ResponseWriter, r *http.Request) (string, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", &authn.BackchannelError{Code: "invalid_request", Description: "the body must be application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBackchannelBody)
	if err := r.ParseForm(); err != nil {
		return "", &authn.BackchannelError{Code: "invalid_request", Description: "the form is malformed or too large", Err: err}
	}
	if v := r.PostForm["logout_token"]; len(v) == 1 {
		return v[0], nil
	}
	return "", &authn.BackchannelError{Code: "invalid_request", Description: "exactly one logout_token is required"}
}

// backchannelAnswer writes the receiver's answer and fills the audit
// record: the ended IdP session's user, or why the token was refused.
func (pt *Portal) backchannelAnswer(w http.ResponseWriter, x *decide.Exchange, res authn.BackchannelResult, err error) error {
	if res.Subject != "" {
		x.RC.Principal = identity.Principal{Kind: identity.KindUser, Subject: res.Subject, IdP: res.IdP}
	}
	if err == nil {
		pt.log.Info("back-channel logout", "idp", res.IdP, "sid_present", res.SID != "", "sessions", res.Sessions, "request_id", x.RC.RequestID)
		w.WriteHeader(http.StatusOK)
		x.Status = http.StatusOK
		return nil
	}
	body := map[string]string{"error": "invalid_request", "error_description": "the logout could not be completed"}
	x.ErrCode = errBackchannelFailed.Code
	var be *authn.BackchannelError
	if errors.As(err, &be) {
		body["error"], body["error_description"] = be.Code, be.Description
		x.ErrCode = errLogoutTokenRefused.Code
	}
	pt.log.Warn("back-channel logout refused", "code", x.ErrCode, "err", err, "request_id", x.RC.RequestID)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(body)
	x.Status = http.StatusBadRequest
	return nil
}
