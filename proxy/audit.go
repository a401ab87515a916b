package proxy

import (
	"context"
	"log/slog"
	"time"
)

// auditLine writes one structured record per decision. It carries who,
// from where, what was asked, what was decided and why — never a token,
// cookie or query string.
func (s *Server) auditLine(x *exchange, decision string, err error, latency time.Duration) {
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs,
		slog.String("request_id", x.rc.RequestID),
		slog.String("route", x.rc.Route),
		slog.String("method", x.rc.Method),
		slog.String("host", x.rc.Host),
		slog.String("path", x.rc.Path),
		slog.String("client_ip", x.clientIP()),
		slog.String("auth", string(x.rc.Principal.AuthKind)),
		slog.String("principal", x.rc.Principal.ID),
	)
	if x.rc.Principal.Email != "" {
		attrs = append(attrs, slog.String("email", x.rc.Principal.Email))
	}
	if x.rc.Device.Present {
		attrs = append(attrs, slog.String("device", x.rc.Device.ID), slog.String("device_fp", x.rc.Device.Fingerprint))
	}
	attrs = append(attrs,
		slog.String("decision", decision),
		slog.Any("policy_ids", x.decision.PolicyIDs),
		slog.Int("risk_score", x.rc.Risk.Score),
		slog.String("risk_level", string(x.rc.Risk.Level)),
	)
	if len(x.rc.Risk.Reasons) > 0 {
		attrs = append(attrs, slog.Any("risk_reasons", x.rc.Risk.Reasons))
	}
	if len(x.decision.StepUp) > 0 {
		attrs = append(attrs, slog.Any("step_up", x.decision.StepUp))
	}
	if err != nil {
		_, code := statusOf(err)
		attrs = append(attrs, slog.String("error", code))
	}
	if x.upstreamStatus != 0 {
		// The response failed mid-body: the client got this status and
		// part of the body; status records the failure (issue 22.3).
		attrs = append(attrs, slog.Int("upstream_status", x.upstreamStatus))
	}
	attrs = append(attrs,
		slog.Int("status", x.status),
		slog.Float64("latency_ms", float64(latency.Microseconds())/1000),
	)
	s.audit.LogAttrs(context.Background(), slog.LevelInfo, "decision", attrs...)
}
