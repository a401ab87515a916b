package audit

import (
	"context"
	"log/slog"
	"time"

	"ztproxy/identity"
)

// Record is the audit line of one finished request. It carries who, from
// where, what was asked, what was decided and why — never a token,
// cookie or query string.
type Record struct {
	// Context is the request context the request was decided in.
	Context *identity.RequestContext
	// ClientIP is Context.ClientIP as text (formatted once per request).
	ClientIP string
	// Decision is the bounded outcome label: allow, deny, step_up,
	// unauthenticated or error.
	Decision string
	// Policy is the authorizer's decision: the policy ids that decided
	// and the step-up requirements.
	Policy *identity.Decision
	// Error is the code of the error a request failed with; empty when
	// it did not fail.
	Error string
	// UpstreamStatus is the status the client already got when the
	// response failed mid-body (issue 22.3); 0 otherwise.
	UpstreamStatus int
	// UpstreamPath is the path forwarded upstream when a route rewrote
	// it; "" when the upstream received the request path.
	UpstreamPath string
	// Status is the status of the answer, or of the failure.
	Status  int
	Latency time.Duration
	// TraceID is the request's OpenTelemetry trace id; empty when tracing
	// is off.
	TraceID string
}

// Log writes the record to l as one "decision" line.
func (r *Record) Log(l *slog.Logger) {
	rc := r.Context
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs,
		slog.String("request_id", rc.RequestID),
	)
	if r.TraceID != "" {
		attrs = append(attrs, slog.String("trace_id", r.TraceID))
	}
	attrs = append(attrs,
		slog.String("route", rc.Route),
		slog.String("method", rc.Method),
		slog.String("host", rc.Host),
		slog.String("path", rc.Path),
	)
	if r.UpstreamPath != "" {
		attrs = append(attrs, slog.String("upstream_path", r.UpstreamPath))
	}
	attrs = append(attrs,
		slog.String("client_ip", r.ClientIP),
		slog.String("auth", string(rc.Principal.AuthKind)),
		slog.String("principal", rc.Principal.ID),
	)
	if rc.Principal.Email != "" {
		attrs = append(attrs, slog.String("email", rc.Principal.Email))
	}
	if rc.Device.Present {
		attrs = append(attrs, slog.String("device", rc.Device.ID), slog.String("device_fp", rc.Device.Fingerprint))
	}
	attrs = append(attrs,
		slog.String("decision", r.Decision),
		slog.Any("policy_ids", r.Policy.PolicyIDs),
		slog.Int("risk_score", rc.Risk.Score),
		slog.String("risk_level", string(rc.Risk.Level)),
	)
	if len(rc.Risk.Reasons) > 0 {
		attrs = append(attrs, slog.Any("risk_reasons", rc.Risk.Reasons))
	}
	if len(r.Policy.StepUp) > 0 {
		attrs = append(attrs, slog.Any("step_up", r.Policy.StepUp))
	}
	if r.Error != "" {
		attrs = append(attrs, slog.String("error", r.Error))
	}
	if r.UpstreamStatus != 0 {
		// The response failed mid-body: the client got this status and
		// part of the body; status records the failure (issue 22.3).
		attrs = append(attrs, slog.Int("upstream_status", r.UpstreamStatus))
	}
	attrs = append(attrs,
		slog.Int("status", r.Status),
		slog.Float64("latency_ms", float64(r.Latency.Microseconds())/1000),
	)
	l.LogAttrs(context.Background(), slog.LevelInfo, "decision", attrs...)
}
