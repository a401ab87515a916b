package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Exporters.
const (
	ExporterGRPC = "otlp_grpc"
	ExporterHTTP = "otlp_http"
)

// Config configures tracing; the zero value is off.
type Config struct {
	// Enabled turns tracing on. OTEL_SDK_DISABLED=true turns it off
	// whatever this says.
	Enabled bool
	// Exporter is ExporterGRPC or ExporterHTTP; empty follows
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL
	// (http/protobuf → HTTP), else gRPC.
	Exporter string
	// Endpoint is the collector's URL (http:// is plaintext, https:// TLS);
	// empty follows OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
	// OTEL_EXPORTER_OTLP_ENDPOINT, else the exporter's default
	// (localhost:4317 or localhost:4318).
	Endpoint string
	// SampleRatio, when set, samples that share of new traces (0..1) and
	// follows a trusted parent's decision; nil follows OTEL_TRACES_SAMPLER
	// and OTEL_TRACES_SAMPLER_ARG, else every trace.
	SampleRatio *float64
	// ServiceName is service.name; empty follows OTEL_SERVICE_NAME, else
	// "ztproxy".
	ServiceName string
	// Version is service.version.
	Version string
	// ExportTimeout bounds one export; default 10s.
	ExportTimeout time.Duration
}

// Tracer starts the spans of requests. A nil *Tracer is tracing off: its
// methods do nothing and allocate nothing.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
}

// noSpan is the span of tracing off: every method is a no-op.
var noSpan = trace.SpanFromContext(context.Background())

// New starts the tracer provider and its exporter; nil, nil when cfg is
// off. The exporter connects lazily: a collector that is down costs
// dropped spans (counted by the SDK), never a failed request.
func New(ctx context.Context, cfg Config) (*Tracer, error) {
	if !cfg.Enabled || strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = os.Getenv("OTEL_SERVICE_NAME")
	}
	if name == "" {
		name = "ztproxy"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", name), attribute.String("service.version", cfg.Version)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return newTracer(exp, res, cfg.SampleRatio), nil
}

// NewWithExporter is a Tracer that sends its spans to exp, sampling ratio
// of new traces (nil: the OTEL_TRACES_SAMPLER default), for tests and
// benchmarks that need no collector.
func NewWithExporter(exp sdktrace.SpanExporter, ratio *float64) *Tracer {
	return newTracer(exp, resource.Default(), ratio)
}

func newTracer(exp sdktrace.SpanExporter, res *resource.Resource, ratio *float64) *Tracer {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if ratio != nil {
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*ratio))))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracer{provider: tp, tracer: tp.Tracer("ztproxy"),
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
}

// newExporter builds the OTLP exporter cfg names.
func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	kind := cfg.Exporter
	if kind == "" {
		proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if proto == "" {
			proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		kind = ExporterGRPC
		if strings.HasPrefix(proto, "http") {
			kind = ExporterHTTP
		}
	}
	timeout := cfg.ExportTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	switch kind {
	case ExporterGRPC:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithTimeout(timeout)}
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		return otlptracegrpc.New(ctx, opts...)
	case ExporterHTTP:
		opts := []otlptracehttp.Option{otlptracehttp.WithTimeout(timeout)}
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		}
		return otlptracehttp.New(ctx, opts...)
	}
	return nil, fmt.Errorf("unknown exporter %q (want %s or %s)", kind, ExporterGRPC, ExporterHTTP)
}

// CheckEndpoint reports an endpoint that is not an http(s) URL with a host.
func CheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return errors.New("must be an http:// or https:// URL of the collector, without credentials (use OTEL_EXPORTER_OTLP_HEADERS)")
	}
	return nil
}

// Shutdown flushes the spans not yet exported, within ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// StartRequest starts the server span of a request on a public listener
// and returns the request carrying it. The W3C trace context (traceparent,
// tracestate, baggage) is believed only when trusted — the TCP peer is
// one of trusted_proxies — else the span starts a new trace: a client
// must not choose its trace id or force sampling.
func (t *Tracer) StartRequest(r *http.Request, trusted bool) (*http.Request, trace.Span) {
	if t == nil {
		return r, noSpan
	}
	ctx := r.Context()
	if trusted {
		ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, span := t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
	return r.WithContext(ctx), span
}

// Start starts a child span of the span in ctx.
func (t *Tracer) Start(ctx context.Context, name string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	return t.tracer.Start(ctx, name)
}

// Transport wraps an upstream transport so that each forwarded request
// gets a client span and carries its trace context (traceparent) to the
// upstream. Off, it returns rt.
func (t *Tracer) Transport(rt http.RoundTripper) http.RoundTripper {
	if t == nil {
		return rt
	}
	return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(t.provider), otelhttp.WithPropagators(t.prop),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "upstream " + r.Method }))
}

// ClientSpans returns the span hook of a client of an AWS service (the
// store's DynamoDB calls): a client span "<service> <op>" per call, failed
// when the call fails. Off, it returns nil (no hook).
func (t *Tracer) ClientSpans(service string) func(ctx context.Context, op string) (context.Context, func(error)) {
	if t == nil {
		return nil
	}
	return func(ctx context.Context, op string) (context.Context, func(error)) {
		ctx, span := t.tracer.Start(ctx, service+" "+op, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("rpc.system", "aws-api"), attribute.String("rpc.service", service),
				attribute.String("ztproxy.store_op", op)))
		return ctx, func(err error) {
			if err != nil {
				span.SetStatus(codes.Error, service+" call failed")
			}
			span.End()
		}
	}
}

// TraceID is the trace id of span in hex, "" when span records nothing.
func TraceID(span trace.Span) string {
	sc := span.SpanContext()
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// Fail marks span failed with a bounded description (an error code, never
// a token or a message with user input).
func Fail(span trace.Span, code string) {
	span.SetStatus(codes.Error, code)
}

// ContextHeaders are the W3C trace context headers a client may send: the
// proxy removes them from untrusted peers' requests and (tracing on)
// replaces them with its own.
var ContextHeaders = []string{"Traceparent", "Tracestate", "Baggage"}
