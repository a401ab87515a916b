package decide

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"ztproxy/audit"
	"ztproxy/authn"
	"ztproxy/identity"
	"ztproxy/tracing"
)

// AuditOnce writes one request's audit line and metric sample exactly
// once, whatever the handler does: every front door that audits defers
// OnPanic right after creating it and calls Finish on its normal path.
type AuditOnce struct {
	x     *Exchange
	start time.Time
	done  bool
}

// NewAuditOnce returns the audit guard of x, a request that started at
// start.
func NewAuditOnce(x *Exchange, start time.Time) AuditOnce {
	return AuditOnce{x: x, start: start}
}

// Finish writes the record of a request that ended with err (nil: it
// succeeded).
func (a *AuditOnce) Finish(err error) {
	a.done = true
	a.x.Engine.finish(a.x, err, a.start)
}

// Done reports whether the record was written.
func (a *AuditOnce) Done() bool { return a.done }

// OnPanic, deferred, writes the record of a request whose handler
// panicked, then panics on with the same value: net/http ends the
// connection quietly for http.ErrAbortHandler and logs anything else with
// its stack (which the re-panic keeps, as the stack is not unwound until
// this function returns). A panic is never turned into a success.
func (a *AuditOnce) OnPanic() {
	if a.done {
		return
	}
	p := recover()
	a.Finish(a.x.PanicOutcome(p))
	if p != nil {
		panic(p)
	}
}

// PanicOutcome records what a panic means for the exchange and returns
// the error for its audit line: a relayed response aborted mid-body
// (http.ErrAbortHandler from ReverseProxy while Stream is set) is
// classified by its cause; any other panic — or runtime.Goexit, where p
// is nil — is an internal error, status 500.
func (x *Exchange) PanicOutcome(p any) error {
	var err error
	if e, ok := p.(error); ok && errors.Is(e, http.ErrAbortHandler) && x.Stream != nil {
		err, x.UpstreamStatus = x.Stream.AbortCause()
	} else {
		err = &Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error",
			Err: fmt.Errorf("handler panicked: %v", p)}
	}
	x.Status, _ = StatusOf(err)
	return err
}

// decisionLabel is the bounded "decision" label of metrics and audit.
func decisionLabel(x *Exchange, err error) string {
	if err == nil || x.Forwarded {
		if x.Preflight {
			// Allowed without authentication or policy: say so.
			return "cors_preflight"
		}
		return "allow"
	}
	var de *Denied
	var be *authn.BearerError
	switch {
	case errors.As(err, &de):
		return de.Decision.Effect.String()
	case errors.As(err, new(*StepUpNeeded)):
		return identity.StepUp.String()
	case errors.As(err, &be), errors.Is(err, ErrNoClientCert), errors.Is(err, errNotBrowser), errors.As(err, new(*LoginNeeded)):
		return "unauthenticated"
	}
	return "error"
}

// finish writes the audit line and the request metrics.
func (e *Engine) finish(x *Exchange, err error, start time.Time) {
	routeName := "none"
	if x.Route != nil {
		routeName = x.Route.Name
	} else if x.RC.Route == "ztp" || strings.HasPrefix(x.RC.Route, "aws:") {
		routeName = x.RC.Route // bounded: the configured AWS roles
	}
	decision := decisionLabel(x, err)
	e.opts.Metrics.Requests.WithLabelValues(routeName, decision, strconv.Itoa(x.Status)).Inc()
	rec := audit.Record{Context: &x.RC, ClientIP: x.ClientIP(), Decision: decision, Policy: &x.Decision,
		UpstreamStatus: x.UpstreamStatus, Status: x.Status, Latency: e.opts.Now().Sub(start), UpstreamPath: x.UpstreamPath,
		TraceID: x.TraceID}
	if err != nil {
		_, rec.Error = StatusOf(err)
	}
	if decision != "allow" {
		e.opts.Metrics.ObserveDenied(routeName, decision, rec.Error, decidingPolicy(&x.Decision))
	}
	rec.Log(e.opts.Audit)
	if x.span != nil {
		endServerSpan(x, routeName, decision, rec.Error)
	}
}

// endServerSpan names the request's server span after its route (bounded)
// and ends it with the outcome.
func endServerSpan(x *Exchange, route, decision, errCode string) {
	x.span.SetName(x.RC.Method + " " + route)
	x.span.SetAttributes(attribute.String("http.route", route), attribute.String("ztproxy.decision", decision),
		attribute.Int("http.response.status_code", x.Status))
	if errCode != "" {
		tracing.Fail(x.span, errCode)
	}
	x.span.End()
}

// decidingPolicy is the first policy that decided a refusal, or "" when
// none did (no permit applied, or the request never reached policy).
func decidingPolicy(d *identity.Decision) string {
	if d.Effect == identity.Allow || len(d.PolicyIDs) == 0 {
		return ""
	}
	return d.PolicyIDs[0]
}
