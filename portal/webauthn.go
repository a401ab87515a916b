package portal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/identity"
)

// Proxy-verified WebAuthn step-up: pages on the external origin to verify
// with a security key or passkey (decide.WebAuthnStepUpPath), to enroll
// one (after a fresh sign-in at the IdP), and to remove one.
const (
	WebAuthnEnrollPath = "/.ztp/stepup/enroll"
	WebAuthnRemovePath = "/.ztp/stepup/keys/remove"
	WebAuthnBeginPath  = decide.WebAuthnStepUpPath + "/begin"
	WebAuthnFinishPath = decide.WebAuthnStepUpPath + "/finish"
	EnrollBeginPath    = WebAuthnEnrollPath + "/begin"
	EnrollFinishPath   = WebAuthnEnrollPath + "/finish"
)

// WebAuthnAuth is the part of browser sign-in that manages security keys
// (implemented by *authn.Browser when WebAuthn is configured).
type WebAuthnAuth interface {
	WebAuthnEnabled() bool
	ReturnTo(raw string) string
	CheckKeyChange(ctx context.Context, p identity.Principal) error
	SecurityKeys(ctx context.Context, p identity.Principal) ([]authn.WebAuthnCredential, error)
	BeginEnroll(ctx context.Context, p identity.Principal) ([]byte, *http.Cookie, error)
	FinishEnroll(ctx context.Context, p identity.Principal, r *http.Request) (authn.WebAuthnCredential, []*http.Cookie, error)
	RemoveSecurityKey(ctx context.Context, p identity.Principal, id []byte) error
	BeginWebAuthnStepUp(ctx context.Context, p identity.Principal) ([]byte, *http.Cookie, error)
	FinishWebAuthnStepUp(ctx context.Context, r *http.Request, device identity.Device) (authn.WebAuthnStepUpResult, error)
}

var _ WebAuthnAuth = (*authn.Browser)(nil)

// webauthnOf returns the engine's WebAuthn support, or nil.
func webauthnOf(eng *decide.Engine) WebAuthnAuth {
	if eng.Config().Browser == nil {
		return nil
	}
	wa, ok := eng.Config().Browser.(WebAuthnAuth)
	if !ok || !wa.WebAuthnEnabled() {
		return nil
	}
	return wa
}

var errNoWebAuthn = &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "security keys are not enabled on this proxy"}

// isWebAuthnPath reports whether p is one of the WebAuthn endpoints.
func isWebAuthnPath(p string) bool {
	return strings.HasPrefix(p, decide.WebAuthnStepUpPath) || strings.HasPrefix(p, WebAuthnEnrollPath) || p == WebAuthnRemovePath
}

// serveWebAuthn dispatches the WebAuthn endpoints.
func (pt *Portal) serveWebAuthn(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	wa := webauthnOf(x.Engine)
	if wa == nil {
		return errNoWebAuthn
	}
	switch r.URL.Path {
	case decide.WebAuthnStepUpPath:
		return pt.webauthnPage(w, r, x, wa, false)
	case WebAuthnEnrollPath:
		return pt.webauthnPage(w, r, x, wa, true)
	case WebAuthnBeginPath, EnrollBeginPath:
		return pt.webauthnBegin(w, r, x, wa, r.URL.Path == EnrollBeginPath)
	case WebAuthnFinishPath:
		return pt.webauthnFinish(w, r, x, wa)
	case EnrollFinishPath:
		return pt.enrollFinish(w, r, x, wa)
	case WebAuthnRemovePath:
		return pt.removeKey(w, r, x, wa)
	}
	return &decide.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "not found"}
}

// webauthnPage serves the verification page, or the enrollment page. A
// user without keys is sent from verification to enrollment, and
// enrollment needs a sign-in at the IdP within the last few minutes.
func (pt *Portal) webauthnPage(w http.ResponseWriter, r *http.Request, x *decide.Exchange, wa WebAuthnAuth, enroll bool) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return decide.ErrMethod
	}
	if !onExternalHost(x.Engine, r) {
		http.Redirect(w, r, x.Engine.Issuer()+r.URL.Path+"?"+r.URL.RawQuery, http.StatusFound)
		return nil
	}
	rd := wa.ReturnTo(r.URL.Query().Get("rd"))
	self := x.Engine.Issuer() + r.URL.Path + "?" + url.Values{"rd": {rd}}.Encode()
	if err := pt.authenticateEndpoint(w, r, x, self); err != nil {
		return err
	}
	p := x.RC.Principal
	if p.AuthKind != identity.AuthBrowser {
		return &decide.Error{Status: http.StatusForbidden, Code: "browser_only", Msg: "security keys are used from a signed-in browser"}
	}
	keys, err := wa.SecurityKeys(r.Context(), p)
	if err != nil {
		return &decide.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Msg: "your security keys could not be loaded right now; try again shortly", Err: err}
	}
	if !enroll && len(keys) == 0 {
		http.Redirect(w, r, x.Engine.Issuer()+WebAuthnEnrollPath+"?"+url.Values{"rd": {self}}.Encode(), http.StatusFound)
		x.Status = http.StatusFound
		return nil
	}
	if enroll {
		// The session cookie alone never binds a new factor: the first
		// key needs a fresh IdP sign-in, later ones an existing key.
		if loc, err := keyChangeRedirect(r.Context(), x, wa, self); err != nil || loc != "" {
			if err == nil {
				http.Redirect(w, r, loc, http.StatusFound)
				x.Status = http.StatusFound
			}
			return err
		}
	}
	x.Status = http.StatusOK
	renderWebAuthnPage(w, webauthnPageData{Enroll: enroll, ReturnTo: rd, User: displayUser(p), Why: stepUpWhy(x, rd)})
	return nil
}

// stepUpWhy is what policy says the route the user is going to needs (the
// @reason of its step-up forbids), so that the security key pages explain
// why they ask. The enrollment page's return URL is the verification
// page, whose own return URL is that route.
func stepUpWhy(x *decide.Exchange, rd string) []string {
	u, err := url.Parse(rd)
	if err == nil && u.Path == decide.WebAuthnStepUpPath {
		u, err = url.Parse(u.Query().Get("rd"))
	}
	if err != nil || strings.HasPrefix(u.Path, "/.ztp/") {
		return nil
	}
	rt := x.Engine.RouteFor(u.String())
	if rt == nil {
		return nil
	}
	d, err := x.Engine.Preview(x, rt)
	if err != nil || d.Effect != identity.StepUp {
		return nil
	}
	return d.Reasons
}

// keyChangeRedirect is where a user must go before changing their keys
// (and come back to rd), or "" when they may change them now.
func keyChangeRedirect(ctx context.Context, x *decide.Exchange, wa WebAuthnAuth, rd string) (string, error) {
	err := wa.CheckKeyChange(ctx, x.RC.Principal)
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, authn.ErrReauthRequired):
		return x.Engine.Issuer() + decide.StepUpPath + "?" + url.Values{"rd": {rd}, "req": {authn.StepUpReauth}}.Encode(), nil
	case errors.Is(err, authn.ErrKeyVerificationRequired):
		return x.Engine.Issuer() + decide.WebAuthnStepUpPath + "?" + url.Values{"rd": {rd}}.Encode(), nil
	}
	return "", webauthnError(x, err)
}

func displayUser(p identity.Principal) string {
	if p.Email != "" {
		return p.Email
	}
	return p.ID
}

// webauthnBegin returns the options for navigator.credentials.create/get
// and sets the ceremony state cookie.
func (pt *Portal) webauthnBegin(w http.ResponseWriter, r *http.Request, x *decide.Exchange, wa WebAuthnAuth, enroll bool) error {
	if err := pt.webauthnPost(w, r, x); err != nil {
		return err
	}
	begin := wa.BeginWebAuthnStepUp
	if enroll {
		begin = wa.BeginEnroll
	}
	options, cookie, err := begin(r.Context(), x.RC.Principal)
	if err != nil {
		return webauthnError(x, err)
	}
	http.SetCookie(w, cookie)
	return writeJSON(w, x, map[string]json.RawMessage{"publicKey": options})
}

// webauthnFinish verifies the assertion, upgrades the session and tells
// the page where to go.
func (pt *Portal) webauthnFinish(w http.ResponseWriter, r *http.Request, x *decide.Exchange, wa WebAuthnAuth) error {
	if err := pt.webauthnPost(w, r, x); err != nil {
		return err
	}
	res, err := wa.FinishWebAuthnStepUp(r.Context(), r, x.RC.Device)
	for _, c := range res.Cookies {
		http.SetCookie(w, c)
	}
	if err != nil {
		return webauthnError(x, err)
	}
	x.RC.Principal = res.Principal
	pt.log.Info("step-up with security key", "principal", res.Principal.ID, "key", res.Key.Name, "request_id", x.RC.RequestID)
	return writeJSON(w, x, map[string]string{"redirect": wa.ReturnTo(r.URL.Query().Get("rd"))})
}

// enrollFinish stores a new key and sends the page on to verification.
func (pt *Portal) enrollFinish(w http.ResponseWriter, r *http.Request, x *decide.Exchange, wa WebAuthnAuth) error {
	if err := pt.webauthnPost(w, r, x); err != nil {
		return err
	}
	key, cookies, err := wa.FinishEnroll(r.Context(), x.RC.Principal, r)
	for _, c := range cookies {
		http.SetCookie(w, c)
	}
	if err != nil {
		return webauthnError(x, err)
	}
	pt.log.Info("security key enrolled", "principal", x.RC.Principal.ID, "key", key.Name, "request_id", x.RC.RequestID)
	return writeJSON(w, x, map[string]string{"redirect": wa.ReturnTo(r.URL.Query().Get("rd"))})
}

// removeKey deletes a key from a form on the whoami page.
func (pt *Portal) removeKey(w http.ResponseWriter, r *http.Request, x *decide.Exchange, wa WebAuthnAuth) error {
	if err := pt.webauthnPost(w, r, x); err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return &decide.Error{Status: http.StatusBadRequest, Code: "bad_request", Msg: "malformed form"}
	}
	id, err := base64.RawURLEncoding.DecodeString(r.PostForm.Get("id"))
	if err != nil || len(id) == 0 || len(id) > 1023 {
		return &decide.Error{Status: http.StatusBadRequest, Code: "bad_request", Msg: "unknown security key"}
	}
	whoamiURL := x.Engine.Issuer() + "/.ztp/whoami"
	if loc, err := keyChangeRedirect(r.Context(), x, wa, whoamiURL); err != nil || loc != "" {
		if err == nil {
			// Verify first, then come back and remove the key again.
			http.Redirect(w, r, loc, http.StatusSeeOther)
			x.Status = http.StatusSeeOther
		}
		return err
	}
	if err := wa.RemoveSecurityKey(r.Context(), x.RC.Principal, id); err != nil {
		return webauthnError(x, err)
	}
	pt.log.Info("security key removed", "principal", x.RC.Principal.ID, "request_id", x.RC.RequestID)
	http.Redirect(w, r, whoamiURL, http.StatusSeeOther)
	x.Status = http.StatusSeeOther
	return nil
}

// webauthnPost checks a state-changing request: POST, from a page of the
// proxy's own origin (never another site), by a signed-in browser.
func (pt *Portal) webauthnPost(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	return pt.browserPost(w, r, x, x.Engine.Issuer()+"/.ztp/whoami", "security keys are used from a signed-in browser")
}

// browserPost checks a state-changing form or fetch: POST, from a page of
// the proxy's own origin (never another site), by a signed-in browser
// (signing in returns to returnTo); notBrowser is the answer's message
// for a caller authenticated otherwise.
func (pt *Portal) browserPost(w http.ResponseWriter, r *http.Request, x *decide.Exchange, returnTo, notBrowser string) error {
	if r.Method != http.MethodPost {
		return decide.ErrMethod
	}
	if !sameOrigin(x.Engine, r) {
		return &decide.Error{Status: http.StatusForbidden, Code: "cross_origin", Msg: "this request must come from a ztproxy page"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := pt.authenticateEndpoint(w, r, x, returnTo); err != nil {
		return err
	}
	if x.RC.Principal.AuthKind != identity.AuthBrowser {
		return &decide.Error{Status: http.StatusForbidden, Code: "browser_only", Msg: notBrowser}
	}
	return nil
}

// sameOrigin reports whether a browser sent r from a page of the
// external origin. fetch() sends that Origin; a form POST from a page with
// Referrer-Policy no-referrer (all ztproxy pages) sends "Origin: null", so
// then the browser's own Sec-Fetch-Site must say same-origin. A request
// that proves neither is refused.
func sameOrigin(eng *decide.Engine, r *http.Request) bool {
	ext := eng.Config().ExternalURL
	site := r.Header.Get("Sec-Fetch-Site")
	switch r.Header.Get("Origin") {
	case ext.Scheme + "://" + ext.Host:
		return site == "" || site == "same-origin"
	case "null", "":
		return site == "same-origin"
	}
	return false
}

// webauthnError maps ceremony failures to what the page shows.
func webauthnError(x *decide.Exchange, err error) error {
	var lre *authn.LoginRequiredError
	switch {
	case errors.As(err, &lre):
		return x.Engine.LoginNeededFor(lre, x.Engine.Issuer()+"/.ztp/whoami", "")
	case errors.Is(err, authn.ErrStoreUnavailable):
		return err // 503 session_store_unavailable
	case errors.Is(err, authn.ErrReauthRequired), errors.Is(err, authn.ErrKeyVerificationRequired):
		return &decide.Error{Status: http.StatusForbidden, Code: "reauth_required", Msg: "changing security keys needs a recent sign-in or key verification; reload the page", Err: err}
	case errors.Is(err, authn.ErrWebAuthnDisabled):
		return errNoWebAuthn
	case errors.Is(err, authn.ErrWebAuthnKeyNotFound):
		return &decide.Error{Status: http.StatusNotFound, Code: "no_such_key", Msg: "that security key is not registered (anymore)", Err: err}
	case errors.Is(err, authn.ErrWebAuthnNoCredentials):
		return &decide.Error{Status: http.StatusConflict, Code: "no_security_key", Msg: "you have no security key yet; add one first", Err: err}
	case errors.Is(err, authn.ErrWebAuthnState):
		return &decide.Error{Status: http.StatusBadRequest, Code: "webauthn_expired", Msg: "this verification expired or was started elsewhere; try again", Err: err}
	case errors.Is(err, authn.ErrWebAuthnSignCount):
		return &decide.Error{Status: http.StatusForbidden, Code: "webauthn_replayed", Msg: "the security key's response was already used, or the key may have been copied", Err: err}
	case errors.Is(err, authn.ErrWebAuthnVerify):
		return &decide.Error{Status: http.StatusForbidden, Code: "webauthn_failed", Msg: "the security key's response did not verify; use a key registered for your account", Err: err}
	}
	return &decide.Error{Status: http.StatusServiceUnavailable, Code: "webauthn_unavailable", Msg: "security keys cannot be checked right now; try again shortly", Err: err}
}

func writeJSON(w http.ResponseWriter, x *decide.Exchange, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	x.Status = http.StatusOK
	return json.NewEncoder(w).Encode(v)
}

// whoamiKeys adds a browser user's security keys to the whoami answer.
func (pt *Portal) whoamiKeys(r *http.Request, x *decide.Exchange, info *Whoami) error {
	wa := webauthnOf(x.Engine)
	if wa == nil || x.RC.Principal.AuthKind != identity.AuthBrowser {
		return nil
	}
	keys, err := wa.SecurityKeys(r.Context(), x.RC.Principal)
	if err != nil {
		return &decide.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Msg: "your security keys could not be loaded right now; try again shortly", Err: err}
	}
	info.KeysEnabled = true
	info.Keys = make([]WhoamiKey, 0, len(keys))
	for _, k := range keys {
		wk := WhoamiKey{ID: base64.RawURLEncoding.EncodeToString(k.ID), Name: k.Name, Created: k.CreatedAt.UTC().Format(time.DateOnly)}
		if !k.LastUsed.IsZero() {
			wk.LastUsed = k.LastUsed.UTC().Format("2006-01-02 15:04Z")
		}
		info.Keys = append(info.Keys, wk)
	}
	return nil
}
