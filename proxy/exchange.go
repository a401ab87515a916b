package proxy

import (
	"context"
	"errors"
	"net/http"

	"ztproxy/awscreds"
	"ztproxy/decide"
)

// exchange is a proxied request: the engine's record of it and the
// forwarding state, in one allocation.
type exchange struct {
	decide.Exchange
	assertion string
	awsCreds  *awscreds.Credentials
	// body is the client's request body as forwarded, if it has one.
	body *requestBody
	// fwd is the forwarding state (issue 22.3).
	fwd forwarding
	// routeHeaders are the route's request_headers.set values, rendered
	// before forwarding (a hostile value refuses the request); nil when
	// the route sets none.
	routeHeaders http.Header
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// Errors of a response that failed after its status line was sent: the
// client got the upstream's status and part of the body, then the
// connection was cut (issue 22.3).
var (
	errUpstreamReset = &decide.Error{Status: http.StatusBadGateway, Code: "upstream_reset",
		Msg: "the upstream broke off the response"}
	errUpstreamTimeoutMidBody = &decide.Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
		Msg: "the route timeout ended the response"}
	errClientClosedMidBody = &decide.Error{Status: 499, Code: "client_closed", Msg: "client closed request"}
)

// forwarding is the state of a request being forwarded, kept in its
// exchange (no allocation of its own).
type forwarding struct {
	client context.Context // the client's request context
	ctx    context.Context // the forwarding context: the route timeout
	// rec is the ResponseWriter ReverseProxy writes through.
	rec statusRecorder
	// err is the upstream failure ReverseProxy's ErrorHandler answered.
	err error
}

var _ decide.ResponseStream = (*forwarding)(nil)

// AbortCause tells why ReverseProxy aborted a response after its header
// (issue 22.3), and the status the client already got.
func (f *forwarding) AbortCause() (error, int) {
	return f.abortCause(), f.rec.status
}

// abortCause tells why ReverseProxy aborted a response after its header:
// copying the body fails either writing to the client or reading from
// the upstream, and the contexts say which and why.
func (f *forwarding) abortCause() error {
	switch {
	case f.client.Err() != nil || f.rec.writeErr != nil:
		return errClientClosedMidBody
	case errors.Is(f.ctx.Err(), context.DeadlineExceeded):
		return errUpstreamTimeoutMidBody
	}
	return errUpstreamReset
}
