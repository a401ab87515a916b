package decide

import (
	"math/rand/v2"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"ztproxy/identity"
)

// Exchange is one request's record from the moment a front door takes it
// to its audit line: the request context the engine builds and decides
// on, the Route and policy decision, and what the front door reports
// back (status, whether the request was forwarded). A front door that
// keeps more per-request state embeds it, so a request costs one
// allocation.
type Exchange struct {
	// Engine is the configuration the request is decided under (Begin
	// sets it).
	Engine *Engine
	// Route is the matched Route; nil before routing or without a match.
	Route *Route
	// RC is the request context the policy sees.
	RC identity.RequestContext
	// Decision is the authorizer's decision.
	Decision    identity.Decision
	TrustedPeer bool
	// ConsumedAuth is set when the Authorization header carried the
	// proxy's own credential; it is not forwarded.
	ConsumedAuth bool
	// ForwardPath is the canonical path with its ";parameters", as the
	// upstream receives it.
	ForwardPath string
	// UpstreamPath is the rewritten path forwarded upstream, when the
	// route rewrote it (the audit line records it next to the path).
	UpstreamPath string
	// Preflight is set when the request was a CORS preflight let through
	// unauthenticated (cors_preflight: allow).
	Preflight bool
	// Status is the status of the answer (or of the failure).
	Status  int
	ErrCode string
	// Scheme is the scheme the client used: from the connection, or for
	// forward-auth and ext_authz from the front proxy's original request.
	// Sign-in and step-up return URLs are built with it.
	Scheme string
	// RawBearer is the verified bearer token (a web identity for STS).
	RawBearer string
	// Forwarded is set once an allowed request reaches its forwarder;
	// later failures keep the decision "allow" and carry an error code.
	Forwarded bool
	// UpstreamStatus is the status already sent when a response failed
	// mid-body; Status then records the failure.
	UpstreamStatus int
	// Stream, set by a front door while it relays a response, explains a
	// handler panic with http.ErrAbortHandler (issue 22.3).
	Stream ResponseStream

	// TraceID is the trace this request's spans belong to (hex); empty
	// when tracing is off.
	TraceID string
	// span is the request's server span; nil when tracing is off.
	span trace.Span

	authnTime    time.Duration
	authzTime    time.Duration
	clientIPText string
	// ambient is the credential the browser attached on its own, if the
	// request was authenticated by one (cookie or client certificate).
	ambient ambientCredential
}

// ResponseStream is a response a front door is relaying.
type ResponseStream interface {
	// AbortCause says why the response was cut off after its header, and
	// which status the client already got.
	AbortCause() (cause error, sentStatus int)
}

// Verdict is the engine's answer about one request; the request context,
// Route and policy decision are in the Exchange.
type Verdict struct {
	// Err is nil when the request may go on. Otherwise it says why not —
	// *Denied, *StepUpNeeded, *LoginNeeded, *authn.BearerError, *Error
	// and the like — and StatusOf maps it to a status and code.
	Err error
	// SetCookies refresh the browser session; the front door sets them
	// on its answer, whatever Err is.
	SetCookies []*http.Cookie
}

// ClientIP returns the client address as text, formatted once.
func (x *Exchange) ClientIP() string {
	if x.clientIPText == "" {
		x.clientIPText = x.RC.ClientIP.String()
	}
	return x.clientIPText
}

// maxRequestIDLength bounds a request id taken from a trusted proxy.
const maxRequestIDLength = 64

// ValidRequestID returns id when it can serve as a request id — 1 to 64
// bytes of [A-Za-z0-9._-] (a UUID, an AWS trace id's parts, Envoy's id) —
// and "" otherwise: it reaches logs, headers and error pages, so nothing
// else is kept.
func ValidRequestID(id string) string {
	if id == "" || len(id) > maxRequestIDLength {
		return ""
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	return id
}

// NewRequestID returns a random 16-hex-digit id. It is a correlation id,
// not a secret.
func NewRequestID() string {
	var b [16]byte
	const hexdigits = "0123456789abcdef"
	v := rand.Uint64()
	for i := range b {
		b[i] = hexdigits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}
