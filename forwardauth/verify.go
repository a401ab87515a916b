package forwardauth

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"ztproxy/authn"
	"ztproxy/decide"
	"ztproxy/identity"
	"ztproxy/idheaders"
)

// Headers of a /.ztp/verify answer besides the identity headers.
const (
	// HeaderLogin carries the sign-in URL of a browser route on a 401.
	HeaderLogin = "X-Ztp-Login"
	// HeaderStepUp carries the step-up URL on a browser's 403, as in
	// proxy mode.
	HeaderStepUp = "X-Ztp-Step-Up"
	// HeaderStepUpRequirements lists the policy's step-up requirements
	// ("mfa", "acr:…") on a browser's 403.
	HeaderStepUpRequirements = "X-Ztp-Step-Up-Requirements"
)

var (
	errVerifyUntrusted = &decide.Error{Status: http.StatusForbidden, Code: "untrusted_peer",
		Msg: "forward-auth answers only proxies listed in trusted_proxies"}
	// errVerifyMTLS wraps decide.ErrNoClientCert so the decision label stays
	// "unauthenticated".
	errVerifyMTLS = &decide.Error{Status: http.StatusUnauthorized, Code: "client_certificate_required",
		Msg: "forward-auth cannot verify client certificates: serve mtls routes through ztproxy itself", Err: decide.ErrNoClientCert}
)

// ServeVerify is the forward-auth decision endpoint (VerifyPath) for
// nginx auth_request, Traefik ForwardAuth and Caddy forward_auth. It runs
// the proxied-request pipeline (route, authenticate, risk, policy) on the
// request the front proxy describes and answers 200 with identity
// headers, 401 or 403 — never 200 on an error. It writes its own answer
// and audit line. The listener has started x (decide.Engine.Begin).
func (s *Server) ServeVerify(w http.ResponseWriter, r *http.Request, x *decide.Exchange) {
	audit := decide.NewAuditOnce(x, x.RC.Time)
	defer audit.OnPanic()
	err := s.verifyDecide(w, r, x)
	if err == nil {
		_, err = s.verifyAllow(w.Header(), x)
	}
	if err != nil {
		x.Status = writeVerifyError(w, r, x, err)
		_, x.ErrCode = decide.StatusOf(err)
	} else {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"decision":"allow","request_id":"`+x.RC.RequestID+`"}`+"\n")
		x.Status = http.StatusOK
	}
	audit.Finish(err)
}

// verifyDecide checks the peer, reads the original request and decides it
// with the same Engine.Decide a proxied request goes through.
func (s *Server) verifyDecide(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	// The connection is the front proxy's, so a client certificate on it
	// identifies the proxy, never the user's device.
	x.RC.Device = identity.Device{}
	if !x.TrustedPeer {
		// Without this a stranger could probe which tokens and sessions
		// pass which routes.
		return errVerifyUntrusted
	}
	orig, err := parseOriginal(r.Header)
	if err != nil {
		return err
	}
	x.RC.Method = orig.method
	// The browser comes back through the front proxy, on its scheme.
	x.Scheme = orig.scheme
	err = decideOn(w, originalHTTPRequest(r, &orig), x)
	if errors.Is(err, decide.ErrNoClientCert) {
		err = errVerifyMTLS
	}
	return err
}

// decideOn asks the engine about the original request r and sets the
// session cookies it refreshed on the answer to the front proxy.
func decideOn(w http.ResponseWriter, r *http.Request, x *decide.Exchange) error {
	v := x.Engine.Decide(r, x)
	for _, c := range v.SetCookies {
		http.SetCookie(w, c)
	}
	return v.Err
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
	r2.Host = decide.CanonicalHost(orig.host, orig.scheme == "https")
	r2.URL = orig.url
	r2.RequestURI = orig.url.RequestURI()
	r2.TLS = nil
	r2.Body = http.NoBody
	r2.ContentLength = 0
	return r2
}

// verifyAllow adds the identity headers for auth_request_set and returns
// the assertion it signed. Routes without pass_identity_headers get none,
// as proxied requests do.
func (s *Server) verifyAllow(h http.Header, x *decide.Exchange) (string, error) {
	p := &x.RC.Principal
	h.Set(idheaders.RequestID, x.RC.RequestID)
	if !x.Route.PassIdentityHeaders || p.Kind == identity.KindAnonymous {
		return "", nil
	}
	tok, err := s.signer.Assertion(x.Engine.Issuer(), &x.RC, x.Engine.Config().AssertionTTL, x.RC.Time)
	if err != nil {
		// Without a verifiable assertion the upstream cannot trust the
		// identity headers: fail closed.
		s.log.Error("assertion signing failed", "route", x.Route.Name, "err", err)
		return "", err
	}
	h.Set(idheaders.User, idheaders.SafeValue(p.ID))
	if p.Email != "" {
		h.Set(idheaders.Email, idheaders.SafeValue(p.Email))
	}
	if len(p.Groups) > 0 {
		h.Set(idheaders.Groups, idheaders.SafeValue(strings.Join(p.Groups, ",")))
	}
	h.Set(idheaders.Assertion, tok)
	return tok, nil
}

// writeVerifyError answers a refused or failed verify with a small JSON
// body. Unlike portal.WriteError it never redirects (auth_request treats a 3xx
// as an error) and never renders a page: the front proxy shows its own.
//
// Traefik and Caddy, unlike nginx, relay a non-2xx answer to the client
// as it is, so with ?redirect=true a browser page load is sent to sign-in
// or step-up with a 302 instead.
func writeVerifyError(w http.ResponseWriter, r *http.Request, x *decide.Exchange, err error) int {
	status, code := decide.StatusOf(err)
	if status == 499 {
		return status // the front proxy is gone; nothing to write
	}
	h := w.Header()
	redirectTo, ln := signInRedirect(err)
	var su *decide.StepUpNeeded
	if redirectTo != "" && verifyMayRedirect(r, x) {
		h.Set("Location", redirectTo)
		w.WriteHeader(http.StatusFound)
		return http.StatusFound
	}
	msg := http.StatusText(status)
	var stepUp []string
	var be *authn.BearerError
	var de *decide.Denied
	var se *authn.SignInError
	var he *decide.Error
	switch {
	case errors.As(err, &ln):
		for _, c := range ln.Clear {
			http.SetCookie(w, c)
		}
		h.Set(HeaderLogin, ln.Location)
		msg = "sign-in required"
	case errors.As(err, &se):
		msg = se.Description
	case errors.As(err, &be):
		h.Set("WWW-Authenticate", decide.BearerChallenge(be.Code, be.Description))
		msg = be.Description
	case errors.As(err, &su):
		// Browser step-up the IdP can satisfy: where to go, as in proxy
		// mode, plus what is asked for.
		msg = "this action needs additional verification; verify, then retry it"
		stepUp = su.Decision.StepUp
		h.Set(HeaderStepUp, su.Location)
		h.Set(HeaderStepUpRequirements, idheaders.SafeValue(strings.Join(stepUp, " ")))
	case errors.As(err, &de) && de.Decision.Effect == identity.StepUp:
		msg = "additional authentication is required"
		stepUp = de.Decision.StepUp
		if de.Bearer {
			h.Set("WWW-Authenticate", decide.StepUpChallenge(de.Decision, de.Hint))
		} else {
			// Only a proxy-verified factor (WebAuthn) would do: no URL.
			code = "step_up"
			h.Set(HeaderStepUpRequirements, idheaders.SafeValue(strings.Join(stepUp, " ")))
		}
	case errors.As(err, &de):
		msg = "access denied by policy"
	case errors.As(err, &he):
		msg = he.Msg
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"message":%q,"request_id":%q`, code, decide.SanitizeQuoted(msg), x.RC.RequestID)
	if len(stepUp) > 0 {
		fmt.Fprintf(w, `,"step_up":%q`, decide.SanitizeQuoted(strings.Join(stepUp, " ")))
	}
	io.WriteString(w, "}\n")
	return status
}

// verifyMayRedirect reports whether the front proxy asked for redirects
// (?redirect=true) and the original request is a page load that can
// follow one.
func verifyMayRedirect(r *http.Request, x *decide.Exchange) bool {
	if r.URL.RawQuery == "" || r.URL.Query().Get("redirect") != "true" {
		return false
	}
	if x.RC.Method != http.MethodGet && x.RC.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	accept := r.Header.Get("Accept")
	return accept == "" || strings.Contains(accept, "text/html") || strings.Contains(accept, "*/*")
}

// signInRedirect is where a refusal sends a browser (sign-in or step-up),
// "" for any other refusal; ln is set for a sign-in.
func signInRedirect(err error) (location string, ln *decide.LoginNeeded) {
	var su *decide.StepUpNeeded
	switch {
	case errors.As(err, &ln):
		return ln.Location, ln
	case errors.As(err, &su):
		return su.Location, nil
	}
	return "", nil
}
