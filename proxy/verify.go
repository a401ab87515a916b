package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"ztproxy/authn"
	"ztproxy/identity"
	"ztproxy/idheaders"
)

// Headers of a /.ztp/verify answer besides the identity headers.
const (
	// headerLogin carries the sign-in URL of a browser route on a 401.
	headerLogin = "X-Ztp-Login"
	// headerStepUp carries the step-up URL on a browser's 403, as in
	// proxy mode.
	headerStepUp = "X-Ztp-Step-Up"
	// headerStepUpRequirements lists the policy's step-up requirements
	// ("mfa", "acr:…") on a browser's 403.
	headerStepUpRequirements = "X-Ztp-Step-Up-Requirements"
)

var (
	errVerifyUntrusted = &httpError{status: http.StatusForbidden, code: "untrusted_peer",
		msg: "forward-auth answers only proxies listed in trusted_proxies"}
	// errVerifyMTLS wraps errNoClientCert so the decision label stays
	// "unauthenticated".
	errVerifyMTLS = &httpError{status: http.StatusUnauthorized, code: "client_certificate_required",
		msg: "forward-auth cannot verify client certificates: serve mtls routes through ztproxy itself", err: errNoClientCert}
)

// handleVerify is the forward-auth decision endpoint for nginx
// auth_request, Traefik ForwardAuth and Caddy forward_auth. It runs the
// proxied-request pipeline (route, authenticate, risk, policy) on the
// request the front proxy describes and answers 200 with identity
// headers, 401 or 403 — never 200 on an error. It writes its own answer
// and audit line, so it always returns nil.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request, x *exchange) error {
	audit := auditOnce{s: s, x: x, start: x.rc.Time}
	defer audit.onPanic()
	err := s.verifyDecide(w, r, x)
	if err == nil {
		err = s.verifyAllow(w.Header(), x)
	}
	if err != nil {
		x.status = writeVerifyError(w, r, x, err)
		_, x.errCode = statusOf(err)
	} else {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"decision":"allow","request_id":"`+x.rc.RequestID+`"}`+"\n")
		x.status = http.StatusOK
	}
	audit.finish(err)
	return nil
}

// verifyDecide checks the peer, reads the original request and decides it
// with the same decide() a proxied request goes through.
func (s *Server) verifyDecide(w http.ResponseWriter, r *http.Request, x *exchange) error {
	// The connection is the front proxy's, so a client certificate on it
	// identifies the proxy, never the user's device.
	x.rc.Device = identity.Device{}
	if !x.trustedPeer {
		// Without this a stranger could probe which tokens and sessions
		// pass which routes.
		return errVerifyUntrusted
	}
	orig, err := parseOriginal(r.Header)
	if err != nil {
		return err
	}
	x.rc.Method = orig.method
	// The browser comes back through the front proxy, on its scheme.
	x.scheme = orig.scheme
	err = s.decide(w, originalHTTPRequest(r, &orig), x)
	if errors.Is(err, errNoClientCert) {
		err = errVerifyMTLS
	}
	return err
}

// originalHTTPRequest is the verify request re-addressed to the original
// method, host and URI: same headers (Authorization, Cookie), remote
// address and context, so the pipeline's helpers work unchanged. TLS is
// left nil; the host is canonicalised here with the original scheme, so
// the default port is dropped as it would be for a proxied request.
func originalHTTPRequest(r *http.Request, orig *originalRequest) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.Method = orig.method
	r2.Host = canonicalHost(orig.host, orig.scheme == "https")
	r2.URL = orig.url
	r2.RequestURI = orig.url.RequestURI()
	r2.TLS = nil
	r2.Body = http.NoBody
	r2.ContentLength = 0
	return r2
}

// verifyAllow adds the identity headers for auth_request_set. Routes
// without pass_identity_headers get none, as proxied requests do.
func (s *Server) verifyAllow(h http.Header, x *exchange) error {
	p := &x.rc.Principal
	h.Set(idheaders.RequestID, x.rc.RequestID)
	if !x.route.PassIdentityHeaders || p.Kind == identity.KindAnonymous {
		return nil
	}
	tok, err := s.signer.Assertion(x.snap.issuer, &x.rc, x.snap.cfg.AssertionTTL, x.rc.Time)
	if err != nil {
		// Without a verifiable assertion the upstream cannot trust the
		// identity headers: fail closed.
		s.log.Error("assertion signing failed", "route", x.route.Name, "err", err)
		return err
	}
	x.assertion = tok
	h.Set(idheaders.User, idheaders.SafeValue(p.ID))
	if p.Email != "" {
		h.Set(idheaders.Email, idheaders.SafeValue(p.Email))
	}
	if len(p.Groups) > 0 {
		h.Set(idheaders.Groups, idheaders.SafeValue(strings.Join(p.Groups, ",")))
	}
	h.Set(idheaders.Assertion, tok)
	return nil
}

// writeVerifyError answers a refused or failed verify with a small JSON
// body. Unlike writeError it never redirects (auth_request treats a 3xx
// as an error) and never renders a page: the front proxy shows its own.
//
// Traefik and Caddy, unlike nginx, relay a non-2xx answer to the client
// as it is, so with ?redirect=true a browser page load is sent to sign-in
// or step-up with a 302 instead.
func writeVerifyError(w http.ResponseWriter, r *http.Request, x *exchange, err error) int {
	status, code := statusOf(err)
	if status == 499 {
		return status // the front proxy is gone; nothing to write
	}
	h := w.Header()
	var ln *loginNeeded
	var su *stepUpNeeded
	redirectTo := ""
	switch {
	case errors.As(err, &ln):
		redirectTo = ln.location
	case errors.As(err, &su):
		redirectTo = su.location
	}
	if redirectTo != "" && verifyMayRedirect(r, x) {
		h.Set("Location", redirectTo)
		w.WriteHeader(http.StatusFound)
		return http.StatusFound
	}
	msg := http.StatusText(status)
	var stepUp []string
	var be *authn.BearerError
	var de *denyError
	var se *authn.SignInError
	var he *httpError
	switch {
	case errors.As(err, &ln):
		for _, c := range ln.clear {
			http.SetCookie(w, c)
		}
		h.Set(headerLogin, ln.location)
		msg = "sign-in required"
	case errors.As(err, &se):
		msg = se.Description
	case errors.As(err, &be):
		h.Set("WWW-Authenticate", bearerChallenge(be.Code, be.Description))
		msg = be.Description
	case errors.As(err, &su):
		// Browser step-up the IdP can satisfy: where to go, as in proxy
		// mode, plus what is asked for.
		msg = "this action needs additional verification; verify, then retry it"
		stepUp = su.decision.StepUp
		h.Set(headerStepUp, su.location)
		h.Set(headerStepUpRequirements, idheaders.SafeValue(strings.Join(stepUp, " ")))
	case errors.As(err, &de) && de.decision.Effect == identity.StepUp:
		msg = "additional authentication is required"
		stepUp = de.decision.StepUp
		if de.bearer {
			h.Set("WWW-Authenticate", stepUpChallenge(de.decision, de.hint))
		} else {
			// Only a proxy-verified factor (WebAuthn) would do: no URL.
			code = "step_up"
			h.Set(headerStepUpRequirements, idheaders.SafeValue(strings.Join(stepUp, " ")))
		}
	case errors.As(err, &de):
		msg = "access denied by policy"
	case errors.As(err, &he):
		msg = he.msg
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"message":%q,"request_id":%q`, code, sanitizeQuoted(msg), x.rc.RequestID)
	if len(stepUp) > 0 {
		fmt.Fprintf(w, `,"step_up":%q`, sanitizeQuoted(strings.Join(stepUp, " ")))
	}
	io.WriteString(w, "}\n")
	return status
}

// verifyMayRedirect reports whether the front proxy asked for redirects
// (?redirect=true) and the original request is a page load that can
// follow one.
func verifyMayRedirect(r *http.Request, x *exchange) bool {
	if r.URL.RawQuery == "" || r.URL.Query().Get("redirect") != "true" {
		return false
	}
	if x.rc.Method != http.MethodGet && x.rc.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	accept := r.Header.Get("Accept")
	return accept == "" || strings.Contains(accept, "text/html") || strings.Contains(accept, "*/*")
}
