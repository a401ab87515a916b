package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"
)

// Errors of a response that failed after its status line was sent: the
// client got the upstream's status and part of the body, then the
// connection was cut (issue 22.3).
var (
	errUpstreamReset = &httpError{status: http.StatusBadGateway, code: "upstream_reset",
		msg: "the upstream broke off the response"}
	errUpstreamTimeoutMidBody = &httpError{status: http.StatusGatewayTimeout, code: "upstream_timeout",
		msg: "the route timeout ended the response"}
	errClientClosedMidBody = &httpError{status: 499, code: "client_closed", msg: "client closed request"}
)

// auditOnce writes one request's audit line and metric sample exactly
// once, whatever the handler does: every front door that audits defers
// onPanic right after creating it and calls finish on its normal path.
type auditOnce struct {
	s     *Server
	x     *exchange
	start time.Time
	done  bool
}

// finish writes the record of a request that ended normally.
func (a *auditOnce) finish(err error) {
	a.done = true
	a.s.finish(a.x, err, a.start)
}

// onPanic, deferred, writes the record of a request whose handler
// panicked, then panics on with the same value: net/http ends the
// connection quietly for http.ErrAbortHandler and logs anything else with
// its stack (which the re-panic keeps, as the stack is not unwound until
// this function returns). A panic is never turned into a success.
func (a *auditOnce) onPanic() {
	if a.done {
		return
	}
	p := recover()
	a.done = true
	a.s.finish(a.x, a.x.panicOutcome(p), a.start)
	if p != nil {
		panic(p)
	}
}

// panicOutcome records what a panic means for the exchange and returns
// the error for its audit line: a forwarded response aborted mid-body
// (http.ErrAbortHandler from ReverseProxy) is classified by its cause;
// any other panic — or runtime.Goexit, where p is nil — is an internal
// error, status 500.
func (x *exchange) panicOutcome(p any) error {
	var err error
	if e, ok := p.(error); ok && errors.Is(e, http.ErrAbortHandler) && x.fwd.started {
		err = x.fwd.abortCause()
		x.upstreamStatus = x.fwd.rec.status
	} else {
		err = &httpError{status: http.StatusInternalServerError, code: "internal", msg: "internal error",
			err: fmt.Errorf("handler panicked: %v", p)}
	}
	x.status, _ = statusOf(err)
	return err
}

// forwarding is the state of a request being forwarded, kept in its
// exchange (no allocation of its own).
type forwarding struct {
	started bool
	client  context.Context // the client's request context
	ctx     context.Context // the forwarding context: the route timeout
	// rec is the ResponseWriter ReverseProxy writes through.
	rec statusRecorder
	// err is the upstream failure ReverseProxy's ErrorHandler answered.
	err error
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

// recoverExtAuthz ends an ext_authz check whose handler panicked: gRPC,
// unlike net/http, would let the panic end the process, so the panic is
// logged with its stack, audited as an internal error and answered with
// codes.Internal (Envoy then fails closed).
func (a *auditOnce) recoverExtAuthz(errp *error) {
	if a.done {
		return
	}
	p := recover()
	a.done = true
	err := a.x.panicOutcome(p)
	a.s.finish(a.x, err, a.start)
	if p == nil {
		return // runtime.Goexit: let it go on
	}
	a.s.log.Error("ext_authz check panicked", "request_id", a.x.rc.RequestID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	*errp = errExtAuthzInternal
}
