// Package tracing owns OpenTelemetry tracing: the tracer provider and its
// OTLP exporter (gRPC or HTTP, configured by the tracing: block and the
// standard OTEL_* environment variables), the W3C trace context read from
// trusted proxies only, and the spans of one request (server, authn,
// risk, authz, STS, DynamoDB, upstream).
//
// Tracing is off by default. Off, a *Tracer is nil and every method is a
// no-op that allocates nothing, so the hot path pays one nil check.
//
// It imports no ztproxy package: the decision engine, the front doors and
// the store call it.
package tracing
