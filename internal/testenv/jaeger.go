package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// JaegerVersion is the Jaeger release the tracing tests export to. .ci/run
// builds it (github.com/jaegertracing/jaeger/cmd/jaeger, Jaeger v2: an
// OpenTelemetry Collector with Jaeger's storage and query API) into
// ~/.cache/ztproxy-jaeger/<version>/jaeger once, in the background.
const JaegerVersion = "v1.75.0"

// JaegerBinary is where .ci/run caches the binary; ZTPROXY_JAEGER_BIN
// overrides it.
func JaegerBinary() string {
	return cachedProgram("ZTPROXY_JAEGER_BIN", "ztproxy-jaeger", JaegerVersion, "jaeger")
}

// Jaeger is a running Jaeger all-in-one with in-memory storage: OTLP in
// over gRPC and HTTP, the query API out.
type Jaeger struct {
	// OTLPGRPC and OTLPHTTP are the receivers' URLs (plaintext).
	OTLPGRPC, OTLPHTTP string
	// QueryURL is the base of the HTTP query API (/api/traces, /api/services).
	QueryURL string

	cmd  *exec.Cmd
	log  *tailBuffer
	done chan struct{}
}

// jaegerConfig is a minimal all-in-one: OTLP receivers, memory storage,
// the query API, on the given loopback ports; no metrics port.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

// StartJaeger starts Jaeger on free loopback ports and stops it when the
// test ends. A missing binary skips the test, and fails it under CI=true.
func StartJaeger(t testing.TB) *Jaeger {
	t.Helper()
	bin := JaegerBinary()
	if _, err := os.Stat(bin); err != nil {
		RequireComponent(t, "jaeger", fmt.Errorf("%s missing (run .ci/run, which builds github.com/jaegertracing/jaeger/cmd/jaeger@%s): %w", bin, JaegerVersion, err))
	}
	query, queryGRPC, grpcPort, httpPort := FreePort(t), FreePort(t), FreePort(t), FreePort(t)
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, query, queryGRPC, grpcPort, httpPort), 0o600); err != nil {
		t.Fatal(err)
	}
	j := &Jaeger{
		OTLPGRPC: "http://127.0.0.1:" + strconv.Itoa(grpcPort), OTLPHTTP: "http://127.0.0.1:" + strconv.Itoa(httpPort),
		QueryURL: "http://127.0.0.1:" + strconv.Itoa(query), log: newTailBuffer(64 << 10), done: make(chan struct{}),
	}
	j.cmd = exec.Command(bin, "--config", cfg)
	j.cmd.SysProcAttr = childProcAttr()
	j.cmd.Stdout, j.cmd.Stderr = j.log, j.log
	if err := j.cmd.Start(); err != nil {
		t.Fatalf("testenv: starting jaeger: %v", err)
	}
	go func() { _ = j.cmd.Wait(); close(j.done) }()
	t.Cleanup(func() {
		_ = j.cmd.Process.Kill()
		<-j.done
		if t.Failed() {
			t.Logf("testenv: jaeger output (tail):\n%s", j.log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(j.QueryURL + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return j
			}
		}
		select {
		case <-j.done:
			t.Fatalf("testenv: jaeger exited before it was ready:\n%s", j.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: jaeger not ready: %v\n%s", err, j.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// JaegerSpan is a span as Jaeger's query API returns it.
type JaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
}

// Parent is the span id of the span's parent, "" for a root.
func (s JaegerSpan) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Tag is the value of a span tag as text, "" when absent.
func (s JaegerSpan) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// Trace returns the spans of a trace, nil while Jaeger does not have it.
func (j *Jaeger) Trace(t testing.TB, traceID string) []JaegerSpan {
	t.Helper()
	resp, err := http.Get(j.QueryURL + "/api/traces/" + url.PathEscape(traceID))
	if err != nil {
		t.Fatalf("testenv: jaeger query: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	var doc struct {
		Data []struct {
			Spans []JaegerSpan `json:"spans"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("testenv: jaeger query: %v: %s", err, body)
	}
	if len(doc.Data) == 0 {
		return nil
	}
	return doc.Data[0].Spans
}
