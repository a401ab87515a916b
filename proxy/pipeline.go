package proxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ztproxy/audit"
	"ztproxy/authn"
	"ztproxy/awscreds"
	"ztproxy/certs"
	"ztproxy/identity"
	"ztproxy/idheaders"
)

// exchange is the per-request state shared by the pipeline stages, the
// forwarder and the audit line.
type exchange struct {
	snap        *snapshot
	route       *route
	rc          identity.RequestContext
	decision    identity.Decision
	trustedPeer bool
	// consumedAuth is set when the Authorization header carried the
	// proxy's own credential; it is not forwarded.
	consumedAuth bool
	forwardPath  string
	assertion    string
	status       int
	errCode      string
	authnTime    time.Duration
	authzTime    time.Duration
	clientIPText string
	// scheme is the scheme the client used: from the connection, or for
	// forward-auth and ext_authz from the front proxy's original request.
	// Sign-in and step-up return URLs are built with it.
	scheme string
	// rawBearer is the verified bearer token (a web identity for STS).
	rawBearer string
	awsCreds  *awscreds.Credentials
	// body is the client's request body as forwarded, if it has one.
	body *requestBody
	// ambient is the credential the browser attached on its own, if the
	// request was authenticated by one (cookie or client certificate).
	ambient ambientCredential
	// forwarded is set once an allowed request reaches its forwarder;
	// later failures keep the decision "allow" and carry an error code.
	forwarded bool
	// fwd is the forwarding state (issue 22.3).
	fwd forwarding
	// upstreamStatus is the status already sent when a response failed
	// mid-body; status then records the failure.
	upstreamStatus int
}

type exchangeKey struct{}

// clientIP returns the client address as text, formatted once.
func (x *exchange) clientIP() string {
	if x.clientIPText == "" {
		x.clientIPText = x.rc.ClientIP.String()
	}
	return x.clientIPText
}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// newRequestID returns a random 16-hex-digit id. It is a correlation id,
// not a secret.
func newRequestID() string {
	var b [16]byte
	const hexdigits = "0123456789abcdef"
	v := rand.Uint64()
	for i := range b {
		b[i] = hexdigits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// serveHTTP is the public listener's entry point: route, authenticate,
// assess, decide, forward — and audit every outcome.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	s.metrics.InFlight.Inc()
	defer s.metrics.InFlight.Dec()
	snap := s.state.Load()
	x := &exchange{snap: snap, scheme: "http"}
	if r.TLS != nil {
		x.scheme = "https"
	}
	x.rc.RequestID = newRequestID()
	x.rc.Time = start
	x.rc.Method = r.Method
	if len(x.rc.Method) > identity.MaxMethodLength {
		x.rc.Method = x.rc.Method[:identity.MaxMethodLength] // for the audit line
	}
	x.rc.UserAgent = r.UserAgent()
	x.rc.Principal = identity.Anonymous
	x.rc.Risk = identity.NeutralRisk
	x.rc.ClientIP, x.rc.TrustedProxyHops = clientAddress(r, snap.cfg.TrustedProxies)
	x.trustedPeer = x.rc.TrustedProxyHops > 0
	x.rc.Device = certs.DeviceFromState(r.TLS)
	if x.rc.Device.Present && snap.cfg.DevicePosture != nil {
		x.rc.Device = snap.cfg.DevicePosture(x.rc.Device)
	}

	err := checkMethod(r.Method)
	if err == nil && strings.HasPrefix(r.URL.Path, "/.ztp/") {
		s.serveInternal(w, r, x)
		return
	}
	// Exactly one audit line and metric sample, also when forwarding
	// panics (issue 22.3).
	audit := auditOnce{s: s, x: x, start: start}
	defer audit.onPanic()
	if err == nil {
		err = s.decide(w, r, x)
	}
	if err == nil {
		x.status, err = x.route.forward.serve(w, r, x)
	} else {
		x.status = writeError(w, r, err, x.rc.RequestID)
	}
	if err != nil {
		_, x.errCode = statusOf(err)
	}
	audit.finish(err)
}

// decide runs everything up to the policy decision. A nil error means
// the request may be forwarded.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, x *exchange) error {
	if err := routeRequest(r, x); err != nil {
		return err
	}
	rt := x.route
	t0 := time.Now()
	err := s.authenticate(w, r, x)
	x.authnTime = time.Since(t0)
	s.metrics.AuthnSeconds.WithLabelValues(string(rt.Auth)).Observe(x.authnTime.Seconds())
	if err == nil {
		err = checkWebSocketOrigin(r, x)
	}
	if err != nil {
		return err
	}

	// Behavioral risk describes people: services (mTLS, client
	// credentials) have no human behaviour to learn and keep the neutral
	// score; policy governs them by identity and device.
	if scorer := x.snap.cfg.Risk; scorer != nil && x.rc.Principal.Kind == identity.KindUser {
		risk, err := scorer.Score(r.Context(), &x.rc)
		x.rc.Risk = risk
		if risk.Level != "" {
			s.metrics.RiskLevels.WithLabelValues(string(risk.Level)).Inc()
		}
		if err != nil {
			s.metrics.RiskErrors.Inc()
			s.log.Warn("risk assessed without the store; failure mode applied", "request_id", x.rc.RequestID, "level", risk.Level, "err", err)
			// The scorer returned its configured failure-mode score; a
			// zero-value level means it could not decide at all.
			if risk.Level == "" {
				x.decision = identity.Decision{Effect: identity.Deny, Reasons: []string{"risk could not be assessed"}}
				return &denyError{decision: x.decision, bearer: rt.Auth == AuthBearer, cause: err}
			}
		}
	}

	t0 = time.Now()
	dec, err := x.snap.cfg.Authorizer.Decide(&x.rc)
	x.authzTime = time.Since(t0)
	s.metrics.AuthzSeconds.Observe(x.authzTime.Seconds())
	if err != nil {
		// Could not decide: fail closed.
		x.decision = identity.Decision{Effect: identity.Deny, Reasons: []string{"policy could not be evaluated"}}
		return &denyError{decision: x.decision, bearer: rt.Auth == AuthBearer, cause: err}
	}
	x.decision = dec
	if dec.Effect != identity.Allow {
		if fr, ok := x.snap.cfg.Risk.(failureRecorder); ok && dec.Effect == identity.Deny && x.rc.Principal.Kind == identity.KindUser {
			fr.RecordFailedAuth(x.rc.Principal.ID)
		}
		if dec.Effect == identity.StepUp && rt.Auth == AuthBrowser && x.snap.cfg.Browser != nil {
			return s.browserStepUp(r, x, dec)
		}
		return &denyError{decision: dec, bearer: rt.Auth == AuthBearer || x.rawBearer != "", hint: x.snap.cfg.StepUpHints[x.rc.Principal.IdP]}
	}
	return nil
}

// routeRequest canonicalises the host and path and finds the route. The
// route is matched on the path without ";parameters" (what a servlet
// container acts on), and only then is it known whether the route
// accepts parameters at all.
func routeRequest(r *http.Request, x *exchange) error {
	host := canonicalHost(r.Host, r.TLS != nil)
	if host == "" {
		return errBadHost
	}
	rp, err := parseRequestPath(rawPath(r.URL))
	if err != nil {
		return errPath
	}
	x.rc.Host, x.rc.Path = host, rp.match
	rt := x.snap.router.match(host, rp.match)
	if rt == nil {
		return errNoRoute
	}
	x.route = rt
	x.rc.Route = rt.Name
	x.forwardPath = rp.forward
	if rp.params && !rt.AllowPathParameters {
		return errPathParams
	}
	if isUpgrade(r) && !rt.WebSocket {
		return errWebSocket
	}
	return nil
}

// failureRecorder is implemented by risk scorers that count a user's
// refused requests (a burst of them is a risk signal).
type failureRecorder interface{ RecordFailedAuth(userID string) }

// authenticate establishes the principal for the route's auth mode.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, x *exchange) error {
	rt := x.route
	switch rt.Auth {
	case AuthPublic:
		return nil
	case AuthMTLS:
		if !x.rc.Device.Present {
			return errNoClientCert
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
		p, err := x.snap.cfg.Bearer.Verify(r.Context(), raw)
		if err != nil {
			return err
		}
		if rt.IdP != "" && p.IdP != rt.IdP {
			return &authn.BearerError{Code: "invalid_token", Description: "token is not from this route's identity provider"}
		}
		x.rc.Principal = p
		x.consumedAuth = true
		x.rawBearer = raw
		return nil
	case AuthBrowser:
		x.ambient = cookieCredential
		return s.authenticateBrowser(w, r, x)
	case AuthSidecar:
		return s.authenticateSidecar(r, x)
	}
	return fmt.Errorf("unknown auth mode %q", rt.Auth)
}

// authenticateSidecar accepts a front proxy's assertion for this service,
// else a bearer token, else a verified client certificate (a service
// calling directly).
func (s *Server) authenticateSidecar(r *http.Request, x *exchange) error {
	if raw := r.Header.Get(idheaders.Assertion); raw != "" && x.snap.cfg.Assertions != nil {
		p, d, err := x.snap.cfg.Assertions.Verify(r.Context(), raw, x.route.Name)
		if err != nil {
			return err
		}
		x.rc.Principal = p
		if d.Present && !x.rc.Device.Present {
			x.rc.Device = d // the device the front proxy verified
		}
		return nil
	}
	if raw, ok := authn.ParseAuthorization(r.Header.Get("Authorization")); ok && x.snap.cfg.Bearer != nil {
		p, err := x.snap.cfg.Bearer.Verify(r.Context(), raw)
		if err != nil {
			return err
		}
		x.rc.Principal, x.consumedAuth, x.rawBearer = p, true, raw
		return nil
	}
	if x.rc.Device.Present {
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
		return errMethod
	}
	return nil
}

// authenticateByCertificate makes the verified client certificate's
// device the principal, a service.
func (x *exchange) authenticateByCertificate() {
	x.rc.Principal = identity.Principal{
		Kind: identity.KindService, ID: x.rc.Device.ID, Subject: x.rc.Device.ID,
		AuthKind: identity.AuthMTLS, Expiry: x.rc.Device.NotAfter,
	}
	x.ambient = certCredential
}

func isUpgrade(r *http.Request) bool {
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

// decisionLabel is the bounded "decision" label of metrics and audit.
func decisionLabel(x *exchange, err error) string {
	if err == nil || x.forwarded {
		return "allow"
	}
	var de *denyError
	var be *authn.BearerError
	switch {
	case errors.As(err, &de):
		return de.decision.Effect.String()
	case errors.As(err, new(*stepUpNeeded)):
		return identity.StepUp.String()
	case errors.As(err, &be), errors.Is(err, errNoClientCert), errors.Is(err, errNotBrowser), errors.As(err, new(*loginNeeded)):
		return "unauthenticated"
	}
	return "error"
}

// finish writes the audit line and the request metrics.
func (s *Server) finish(x *exchange, err error, start time.Time) {
	routeName := "none"
	if x.route != nil {
		routeName = x.route.Name
	} else if x.rc.Route == "ztp" || strings.HasPrefix(x.rc.Route, "aws:") {
		routeName = x.rc.Route // bounded: the configured AWS roles
	}
	decision := decisionLabel(x, err)
	s.metrics.Requests.WithLabelValues(routeName, decision, strconv.Itoa(x.status)).Inc()
	rec := audit.Record{Context: &x.rc, ClientIP: x.clientIP(), Decision: decision, Policy: &x.decision,
		UpstreamStatus: x.upstreamStatus, Status: x.status, Latency: s.now().Sub(start)}
	if err != nil {
		_, rec.Error = statusOf(err)
	}
	rec.Log(s.audit)
}
