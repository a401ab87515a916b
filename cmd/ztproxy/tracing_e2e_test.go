package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// upstreamSeen records the trace headers each request reached the
// upstream with, by path.
type upstreamSeen struct {
	mu  sync.Mutex
	hdr map[string]http.Header
}

func (u *upstreamSeen) get(path string) http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hdr[path]
}

// clientFrom is an HTTP client whose connections come from the loopback
// address src: 127.0.0.2 plays a trusted load balancer, 127.0.0.1 a client.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// traceIDOf is the trace id field of a traceparent.
func traceIDOf(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}

// auditLine finds the audit line of a request id in an audit file.
func auditLine(t *testing.T, path, requestID string) map[string]any {
	t.Helper()
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(data), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["request_id"] == requestID {
			return rec
		}
	}
	return nil
}

// TestE2ETracingToJaeger: issue 19, a slow request could not be followed
// through authn → risk → policy → upstream. The real binary now exports
// its spans to a real Jaeger (OTLP gRPC from the tracing: block; OTLP HTTP
// from the standard OTEL_* variables alone), and Jaeger's query API shows
// the span tree: the server span with authn, risk, authz and upstream
// children, the upstream seeing the same trace id, and the trace id in the
// audit line. traceparent and X-Request-Id are believed from the trusted
// load balancer only, never from a client.
func TestE2ETracingToJaeger(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	idpKey := testenv.NewECSigningKey(t, "idp")
	idp := testenv.StartHostileIdP(t, idpKey)
	seen := &upstreamSeen{hdr: map[string]http.Header{}}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		seen.hdr[r.URL.Path] = r.Header.Clone()
		seen.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(app.Close)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // export within 100 ms, not 5 s

	start := func(tracing string) (base, audit string) {
		dir := t.TempDir()
		public, admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
		writeFile(t, filepath.Join(dir, "ztproxy.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "http://%s"
insecure_plaintext: true
trusted_proxies: [127.0.0.2/32]
policies: [p.cedar]
idps: [{name: corp, issuer: %q, audiences: [api]}]
store: {path: state.db}
audit: {output: audit.log}
tracing: %s
routes:
  - {name: api, host: 127.0.0.1, path_prefix: /, upstream: %q, auth: bearer}
`, public, admin, public, idp.Issuer, tracing, app.URL))
		startServe(t, filepath.Join(dir, "ztproxy.yaml"), admin, public)
		return "http://" + public, filepath.Join(dir, "audit.log")
	}
	token := testenv.Token(idpKey, idp.Claims("alice", "api", time.Hour))
	call := func(c *http.Client, url string, hdr map[string]string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", url, resp.StatusCode)
		}
	}
	// waitTrace polls Jaeger until the trace has want spans.
	waitTrace := func(traceID string, want int) []testenv.JaegerSpan {
		t.Helper()
		var spans []testenv.JaegerSpan
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if spans = jaeger.Trace(t, traceID); len(spans) >= want {
				return spans
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("trace %s in jaeger: %d spans, want %d: %+v", traceID, len(spans), want, spans)
		return nil
	}
	// checkTree asserts the span tree: one server span (child of parent,
	// "" for a root) with authn, risk, authz and the upstream client span
	// under it, and the upstream's traceparent naming the client span.
	checkTree := func(spans []testenv.JaegerSpan, parent, upstreamTraceparent string) {
		t.Helper()
		byName := map[string]testenv.JaegerSpan{}
		for _, s := range spans {
			byName[s.OperationName] = s
		}
		server, ok := byName["GET api"]
		if !ok {
			t.Fatalf("no server span GET api: %+v", spans)
		}
		if server.Parent() != parent {
			t.Errorf("server span parent %q, want %q", server.Parent(), parent)
		}
		if server.Tag("ztproxy.decision") != "allow" || server.Tag("http.response.status_code") != "200" {
			t.Errorf("server span tags: %+v", server.Tags)
		}
		for _, child := range []string{"authn", "risk", "authz", "upstream GET"} {
			s, ok := byName[child]
			if !ok || s.Parent() != server.SpanID {
				t.Errorf("span %q: present %v, parent %q, want the server span %s", child, ok, s.Parent(), server.SpanID)
			}
		}
		if parts := strings.Split(upstreamTraceparent, "-"); len(parts) != 4 || parts[2] != byName["upstream GET"].SpanID {
			t.Errorf("upstream traceparent %q does not name the upstream span %s", upstreamTraceparent, byName["upstream GET"].SpanID)
		}
	}

	base, auditPath := start(fmt.Sprintf("{enabled: true, exporter: otlp_grpc, endpoint: %q, sample_ratio: 1, service_name: ztproxy-e2e}", jaeger.OTLPGRPC))
	const clientTraceID = "0af7651916cd43dd8448eb211c80319c"
	spoofed := "00-" + clientTraceID + "-b7ad6b7169203331-01"

	t.Run("untrusted client: new trace, own request id", func(t *testing.T) {
		call(clientFrom("127.0.0.1"), base+"/client", map[string]string{"Traceparent": spoofed, "X-Request-Id": "client-chosen-id"})
		up := seen.get("/client")
		tp := up.Get("Traceparent")
		traceID := traceIDOf(tp)
		if traceID == "" || traceID == clientTraceID {
			t.Fatalf("upstream traceparent %q: the client's trace was believed or none was sent", tp)
		}
		rid := up.Get("X-Request-Id")
		if rid == "client-chosen-id" || len(rid) != 16 {
			t.Errorf("upstream X-Request-Id %q: the client's was believed", rid)
		}
		spans := waitTrace(traceID, 5)
		checkTree(spans, "", tp)
		if jaeger.Trace(t, clientTraceID) != nil {
			t.Error("spans were recorded in the client's chosen trace")
		}
		if rec := auditLine(t, auditPath, rid); rec == nil || rec["trace_id"] != traceID {
			t.Errorf("audit line of %s: %v, want trace_id %s", rid, rec, traceID)
		}
	})
	t.Run("trusted load balancer: its trace and request id", func(t *testing.T) {
		const lbTraceID, lbSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		call(clientFrom("127.0.0.2"), base+"/lb", map[string]string{"Traceparent": "00-" + lbTraceID + "-" + lbSpan + "-01", "X-Request-Id": "lb-req-0001"})
		up := seen.get("/lb")
		tp := up.Get("Traceparent")
		if traceIDOf(tp) != lbTraceID {
			t.Fatalf("upstream traceparent %q, want trace %s", tp, lbTraceID)
		}
		if up.Get("X-Request-Id") != "lb-req-0001" {
			t.Errorf("upstream X-Request-Id %q, want the load balancer's", up.Get("X-Request-Id"))
		}
		checkTree(waitTrace(lbTraceID, 5), lbSpan, tp)
		if rec := auditLine(t, auditPath, "lb-req-0001"); rec == nil || rec["trace_id"] != lbTraceID {
			t.Errorf("audit line: %v", rec)
		}
	})
	t.Run("OTLP HTTP from OTEL_* variables", func(t *testing.T) {
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.OTLPHTTP)
		t.Setenv("OTEL_SERVICE_NAME", "ztproxy-env")
		base, _ := start("{enabled: true}")
		call(clientFrom("127.0.0.1"), base+"/env", nil)
		tp := seen.get("/env").Get("Traceparent")
		checkTree(waitTrace(traceIDOf(tp), 5), "", tp)
	})
}

// TestE2ETracingOffPassesTrustedContext: issue 19, tracing off (the
// default). The proxy starts no spans, a trusted load balancer's
// traceparent still reaches the upstream unchanged, and a client's is
// removed.
func TestE2ETracingOffPassesTrustedContext(t *testing.T) {
	seen := &upstreamSeen{hdr: map[string]http.Header{}}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		seen.hdr[r.URL.Path] = r.Header.Clone()
		seen.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(app.Close)
	dir := t.TempDir()
	public, admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
	writeFile(t, filepath.Join(dir, "ztproxy.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "http://%s"
insecure_plaintext: true
trusted_proxies: [127.0.0.2/32]
policies: [p.cedar]
store: {path: state.db}
audit: {output: audit.log}
routes:
  - {name: pub, host: 127.0.0.1, path_prefix: /, upstream: %q, auth: public}
`, public, admin, public, app.URL))
	startServe(t, filepath.Join(dir, "ztproxy.yaml"), admin, public)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct{ src, path, want string }{{"127.0.0.2", "/lb", tp}, {"127.0.0.1", "/client", ""}} {
		req, _ := http.NewRequest("GET", "http://"+public+c.path, nil)
		req.Header.Set("Traceparent", tp)
		req.Header.Set("Tracestate", "vendor=x")
		resp, err := clientFrom(c.src).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := seen.get(c.path).Get("Traceparent"); got != c.want {
			t.Errorf("from %s: upstream traceparent %q, want %q", c.src, got, c.want)
		}
	}
}
