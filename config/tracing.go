package config

import (
	"os"

	"ztproxy/tracing"
)

// Tracing configures OpenTelemetry tracing (docs/tracing.md). Unset keys
// follow the standard OTEL_* environment variables.
type Tracing struct {
	// Enabled turns tracing on; off (the default) costs nothing per request.
	Enabled bool `yaml:"enabled"`
	// Exporter is otlp_grpc or otlp_http; "" follows
	// OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL, else otlp_grpc.
	Exporter string `yaml:"exporter"`
	// Endpoint is the collector's http:// or https:// URL; "" follows
	// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio samples this share (0..1) of new traces, following a
	// trusted parent's decision; nil follows OTEL_TRACES_SAMPLER(_ARG),
	// else every trace.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is service.name; "" follows OTEL_SERVICE_NAME, else
	// ztproxy.
	ServiceName string `yaml:"service_name"`
}

func (f *File) checkTracing(c *collector) {
	t := &f.Tracing
	switch t.Exporter {
	case "", tracing.ExporterGRPC, tracing.ExporterHTTP:
	default:
		c.add("tracing.exporter", "must be %s or %s, not %q", tracing.ExporterGRPC, tracing.ExporterHTTP, t.Exporter)
	}
	if t.Endpoint != "" {
		if err := tracing.CheckEndpoint(t.Endpoint); err != nil {
			c.add("tracing.endpoint", "%v", err)
		}
	}
	if r := t.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		c.add("tracing.sample_ratio", "must be between 0 and 1, not %v", *r)
	}
	if t.Enabled && t.Endpoint == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		c.warn("tracing.endpoint", "not set, and no OTEL_EXPORTER_OTLP_ENDPOINT: spans go to the exporter's default, localhost:4317 (gRPC) or localhost:4318 (HTTP), over TLS")
	}
}

// TracingConfig is the tracing package's Config for this file.
func (f *File) TracingConfig(version string) tracing.Config {
	t := f.Tracing
	return tracing.Config{Enabled: t.Enabled, Exporter: t.Exporter, Endpoint: t.Endpoint, SampleRatio: t.SampleRatio,
		ServiceName: t.ServiceName, Version: version}
}
