package decide

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"ztproxy/authn"
	"ztproxy/identity"
	"ztproxy/idheaders"
	"ztproxy/tracing"
)

// Decide runs the pipeline on a request Begin prepared: route it
// (canonical host and path, exactly one route), authenticate the caller,
// check a WebSocket handshake's Origin, assess risk, let policy decide
// and turn a browser step-up into where to go. The request context, the
// route and the policy decision are left in x.
func (e *Engine) Decide(r *http.Request, x *Exchange) Verdict {
	var v Verdict
	v.Err = e.decide(r, x, &v)
	return v
}

// decide runs everything up to the policy decision. A nil error means
// the request may be forwarded.
func (e *Engine) decide(r *http.Request, x *Exchange, v *Verdict) error {
	if err := e.routeRequest(r, x); err != nil {
		return err
	}
	if x.RC.Device.Refused() {
		// Issue 16: the inventory is the device certificates' revocation
		// list; a revoked or lost device is refused whatever policy says.
		return ErrDeviceRevoked
	}
	rt := x.Route
	if rt.CORSPreflight && IsCORSPreflight(r) {
		x.Preflight = true
		x.Decision = identity.Decision{Effect: identity.Allow, Reasons: []string{"CORS preflight forwarded unauthenticated (cors_preflight: allow)"}}
		return e.checkRate(x)
	}
	t0 := time.Now()
	_, span := e.opts.Tracer.Start(r.Context(), "authn")
	err := e.authenticate(r, x, v)
	x.authnTime = time.Since(t0)
	endSpan(span, err)
	e.opts.Metrics.AuthnSeconds.WithLabelValues(string(rt.Auth)).Observe(x.authnTime.Seconds())
	if err == nil {
		err = checkWebSocketOrigin(r, x)
	}
	if err == nil {
		err = e.checkRate(x)
	}
	if err != nil {
		return err
	}
	if err := e.checkCompromised(x); err != nil {
		return err
	}
	if dec, ok := e.stepUpRequired(x); ok {
		x.Decision = dec
		if rt.Auth == AuthBrowser && e.cfg.Browser != nil {
			return e.browserStepUp(r, x, dec)
		}
		return &Denied{Decision: dec, Bearer: rt.Auth == AuthBearer || x.RawBearer != "", Hint: e.cfg.StepUpHints[x.RC.Principal.IdP],
			Principal: x.RC.Principal, Route: rt.Name}
	}

	// Behavioral risk describes people: services (mTLS, client
	// credentials) have no human behaviour to learn and keep the neutral
	// score; policy governs them by identity and device.
	if scorer := e.cfg.Risk; scorer != nil && x.RC.Principal.Kind == identity.KindUser {
		ctx, span := e.opts.Tracer.Start(r.Context(), "risk")
		risk, err := scorer.Score(ctx, &x.RC)
		endSpan(span, err)
		x.RC.Risk = risk
		if risk.Level != "" {
			e.opts.Metrics.RiskLevels.WithLabelValues(string(risk.Level)).Inc()
		}
		if err != nil {
			e.opts.Metrics.RiskErrors.Inc()
			e.opts.Logger.Warn("risk assessed without the store; failure mode applied", "request_id", x.RC.RequestID, "level", risk.Level, "err", err)
			// The scorer returned its configured failure-mode score; a
			// zero-value level means it could not decide at all.
			if risk.Level == "" {
				x.Decision = identity.Decision{Effect: identity.Deny, Reasons: []string{"risk could not be assessed"}}
				return &Denied{Decision: x.Decision, Bearer: rt.Auth == AuthBearer, Cause: err}
			}
		}
	}

	t0 = time.Now()
	_, span = e.opts.Tracer.Start(r.Context(), "authz")
	dec, err := e.cfg.Authorizer.Decide(&x.RC)
	x.authzTime = time.Since(t0)
	endSpan(span, err)
	e.opts.Metrics.AuthzSeconds.Observe(x.authzTime.Seconds())
	if err != nil {
		// Could not decide: fail closed.
		x.Decision = identity.Decision{Effect: identity.Deny, Reasons: []string{"policy could not be evaluated"}}
		return &Denied{Decision: x.Decision, Bearer: rt.Auth == AuthBearer, Cause: err}
	}
	x.Decision = dec
	if dec.Effect != identity.Allow {
		if fr, ok := e.cfg.Risk.(failureRecorder); ok && dec.Effect == identity.Deny && x.RC.Principal.Kind == identity.KindUser {
			fr.RecordFailedAuth(x.RC.Principal.ID)
		}
		if dec.Effect == identity.StepUp && rt.Auth == AuthBrowser && e.cfg.Browser != nil {
			return e.browserStepUp(r, x, dec)
		}
		return &Denied{Decision: dec, Bearer: rt.Auth == AuthBearer || x.RawBearer != "", Hint: e.cfg.StepUpHints[x.RC.Principal.IdP],
			Principal: x.RC.Principal, Route: rt.Name}
	}
	return nil
}

// endSpan ends a child span, marked failed when err is set. The error's
// text stays out of the trace: it may quote what the client sent.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		_, code := StatusOf(err)
		tracing.Fail(span, code)
	}
	span.End()
}

// PolicyCompromised is the policy id the audit log names when the engine
// itself refused a principal flagged compromised.
const PolicyCompromised = "ztproxy:compromised"

// errGuardUnavailable: the compromised set could not be read from the
// store yet, so nobody can be cleared of it.
var errGuardUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "access_state_unavailable",
	Msg: "the proxy cannot read its access state from the store yet; try again shortly"}

// checkCompromised is the kill switch (issue 17): a principal flagged
// compromised is denied on every route before risk and policy are asked,
// users and services alike. The guard answers from memory.
func (e *Engine) checkCompromised(x *Exchange) error {
	id := x.RC.Principal.ID
	if e.cfg.Guard == nil || id == "" {
		return nil
	}
	reason, bad, err := e.cfg.Guard.Compromised(id)
	if err != nil {
		return &Error{Status: errGuardUnavailable.Status, Code: errGuardUnavailable.Code, Msg: errGuardUnavailable.Msg, Err: err}
	}
	if !bad {
		return nil
	}
	// The flag's reason may name an investigation: it goes to the
	// operator's log, not to the refused caller.
	e.opts.Logger.Warn("principal flagged compromised refused", "request_id", x.RC.RequestID,
		"principal", id, "route", x.Route.Name, "flag_reason", reason)
	x.Decision = identity.Decision{Effect: identity.Deny, PolicyIDs: []string{PolicyCompromised},
		Reasons: []string{"this account is flagged compromised; access is blocked until an operator clears the flag"}}
	return &Denied{Decision: x.Decision, Bearer: x.Route.Auth == AuthBearer || x.RawBearer != "",
		Principal: x.RC.Principal, Route: x.Route.Name}
}

// PolicyStepUpRequired names the engine's own step-up, asked by a
// security event (issue 17), in the audit log.
const PolicyStepUpRequired = "ztproxy:step-up-required"

// stepUpRequired asks a user whose authentication a security event
// discounted (a step_up flag newer than its auth_time) to authenticate
// again, whatever policy says; services cannot step up and are refused.
func (e *Engine) stepUpRequired(x *Exchange) (identity.Decision, bool) {
	p := &x.RC.Principal
	if e.cfg.Guard == nil || p.ID == "" {
		return identity.Decision{}, false
	}
	since, ok := e.cfg.Guard.StepUpSince(p.ID)
	if !ok || p.AuthTime.After(since) {
		return identity.Decision{}, false
	}
	dec := identity.Decision{Effect: identity.StepUp, StepUp: []string{"mfa"}, PolicyIDs: []string{PolicyStepUpRequired},
		Reasons: []string{"a security event asks you to sign in again"}}
	if p.Kind != identity.KindUser {
		dec.Effect = identity.Deny
	}
	return dec, true
}

// routeRequest canonicalises the host and path and finds the route. The
// route is matched on the path without ";parameters" (what a servlet
// container acts on), and only then is it known whether the route
// accepts parameters at all.
func (e *Engine) routeRequest(r *http.Request, x *Exchange) error {
	host := CanonicalHost(r.Host, r.TLS != nil)
	if host == "" {
		return errBadHost
	}
	rp, err := ParseRequestPath(RawPath(r.URL))
	if err != nil {
		return errPath
	}
	x.RC.Host, x.RC.Path = host, rp.Match
	rt := e.router.match(host, rp.Match)
	if rt == nil {
		return errNoRoute
	}
	x.Route = rt
	x.RC.Route = rt.Name
	x.ForwardPath = rp.Forward
	if rp.Params && !rt.AllowPathParameters {
		return errPathParams
	}
	if IsUpgrade(r) && !rt.WebSocket {
		return errWebSocket
	}
	return nil
}

// failureRecorder is implemented by risk scorers that count a user's
// refused requests (a burst of them is a risk signal).
type failureRecorder interface{ RecordFailedAuth(userID string) }

// authenticate establishes the principal for the route's auth mode.
func (e *Engine) authenticate(r *http.Request, x *Exchange, v *Verdict) error {
	rt := x.Route
	switch rt.Auth {
	case AuthPublic:
		return nil
	case AuthMTLS:
		if !x.RC.Device.Present {
			return ErrNoClientCert
		}
		x.authenticateByCertificate()
		return nil
	case AuthBearer:
		raw, ok := authn.ParseAuthorization(r.Header.Get("Authorization"))
		if !ok {
			if r.Header.Get("Authorization") == "" {
				return &authn.BearerError{Code: "invalid_request", Description: "a bearer token is required"}
			}
			return &authn.BearerError{Code: "invalid_request", Description: "malformed Authorization header"}
		}
		p, err := e.cfg.Bearer.Verify(r.Context(), raw)
		if err != nil {
			return err
		}
		if rt.IdP != "" && p.IdP != rt.IdP {
			return &authn.BearerError{Code: "invalid_token", Description: "token is not from this route's identity provider"}
		}
		x.RC.Principal = p
		x.ConsumedAuth = true
		x.RawBearer = raw
		return nil
	case AuthBrowser:
		x.ambient = cookieCredential
		return e.authenticateBrowser(r, x, v)
	case AuthSidecar:
		return e.authenticateSidecar(r, x)
	}
	return fmt.Errorf("unknown auth mode %q", rt.Auth)
}

// authenticateSidecar accepts a front proxy's assertion for this service,
// else a bearer token, else a verified client certificate (a service
// calling directly).
func (e *Engine) authenticateSidecar(r *http.Request, x *Exchange) error {
	if raw := r.Header.Get(idheaders.Assertion); raw != "" && e.cfg.Assertions != nil {
		p, d, err := e.cfg.Assertions.Verify(r.Context(), raw, x.Route.Name)
		if err != nil {
			return err
		}
		x.RC.Principal = p
		if d.Present && !x.RC.Device.Present {
			x.RC.Device = d // the device the front proxy verified
		}
		return nil
	}
	if raw, ok := authn.ParseAuthorization(r.Header.Get("Authorization")); ok && e.cfg.Bearer != nil {
		p, err := e.cfg.Bearer.Verify(r.Context(), raw)
		if err != nil {
			return err
		}
		x.RC.Principal, x.ConsumedAuth, x.RawBearer = p, true, raw
		return nil
	}
	if x.RC.Device.Present {
		x.authenticateByCertificate()
		return nil
	}
	return &authn.BearerError{Code: "invalid_request", Description: "an identity assertion, a bearer token or a client certificate is required"}
}

// checkMethod refuses methods that are not in canonical (upper-case)
// form, and CONNECT, which a reverse proxy never tunnels.
func checkMethod(m string) error {
	switch {
	case !identity.ValidMethod(m):
		return errBadMethod
	case m == http.MethodConnect:
		return ErrMethod
	}
	return nil
}

// authenticateByCertificate makes the verified client certificate's
// device the principal, a service.
func (x *Exchange) authenticateByCertificate() {
	x.RC.Principal = identity.Principal{
		Kind: identity.KindService, ID: x.RC.Device.ID, Subject: x.RC.Device.ID,
		AuthKind: identity.AuthMTLS, Expiry: x.RC.Device.NotAfter,
	}
	x.ambient = certCredential
}

// IsUpgrade reports whether r asks to switch protocols (a WebSocket).
func IsUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// IsCORSPreflight reports whether r is a CORS preflight: OPTIONS with one
// Origin and one Access-Control-Request-Method naming a method (Fetch
// standard). A plain OPTIONS is not one.
func IsCORSPreflight(r *http.Request) bool {
	if r.Method != http.MethodOptions {
		return false
	}
	origin, method := r.Header["Origin"], r.Header["Access-Control-Request-Method"]
	return len(origin) == 1 && origin[0] != "" && len(method) == 1 && identity.ValidMethod(method[0])
}
