package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// upstreamEnv is the real binary in front of hostile upstreams
// (testenv.HostileUpstream), one route each, with a real OpenID provider
// (npm oidc-provider) for the bearer route.
type upstreamEnv struct {
	dir, public, admin string
	proc               *proc
	op                 *testenv.OIDCProvider
	split              *testenv.HostileUpstream
}

// partialStream is a streamed response (relayed to the client at once)
// that sends one chunk and never ends.
const partialStream = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n"

func newUpstreamEnv(t *testing.T) *upstreamEnv {
	e := &upstreamEnv{dir: t.TempDir()}
	e.op = testenv.StartOIDC(t, testenv.OIDCOptions{})
	// Issue 12.1: alice's answer, then 30 ms later an unsolicited second
	// response on the same keep-alive connection.
	e.split = testenv.StartHostileUpstream(t,
		[]testenv.Step{testenv.ReadRequest(), testenv.Respond("for {{path}}"), testenv.Sleep(30 * time.Millisecond),
			testenv.Write(testenv.HostileResponse(200, "alice's private data")), testenv.Mark("stray"),
			testenv.ReadRequest(), testenv.Respond("for {{path}}"), testenv.Drain()},
		[]testenv.Step{testenv.KeepAlive("for {{path}}")},
	)
	reset := testenv.StartHostileUpstream(t, []testenv.Step{testenv.ReadRequest(), testenv.Write(partialStream), testenv.Sleep(50 * time.Millisecond)})
	stall := testenv.StartHostileUpstream(t, []testenv.Step{testenv.ReadRequest(), testenv.Write(partialStream), testenv.Sleep(time.Minute)})
	silent := testenv.StartHostileUpstream(t, []testenv.Step{testenv.ReadRequest(), testenv.Sleep(time.Minute)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()

	e.public = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.admin = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	writeFile(t, filepath.Join(e.dir, "p.cedar"), "permit (principal, action, resource);\n")
	cfg := fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "http://%s"
insecure_plaintext: true
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, audiences: [%q, "ztproxy"]}
store: {path: state.db}
audit: {output: audit.log}
routes:
  - {name: split, host: 127.0.0.1, path_prefix: /split, upstream: %q, auth: bearer}
  - {name: reset, host: 127.0.0.1, path_prefix: /reset, upstream: %q, auth: public}
  - {name: slow, host: 127.0.0.1, path_prefix: /slow, upstream: %q, auth: public, timeout: 500ms}
  - {name: gone, host: 127.0.0.1, path_prefix: /gone, upstream: %q, auth: public}
  - {name: refused, host: 127.0.0.1, path_prefix: /refused, upstream: %q, auth: public}
  - {name: silent, host: 127.0.0.1, path_prefix: /silent, upstream: %q, auth: public, timeout: 300ms}
`, e.public, e.admin, e.public, e.op.Issuer, e.op.Resource, e.split.URL, reset.URL, stall.URL, stall.URL, refused, silent.URL)
	writeFile(t, filepath.Join(e.dir, "ztproxy.yaml"), cfg)
	e.proc = startServe(t, filepath.Join(e.dir, "ztproxy.yaml"), e.admin, e.public)
	return e
}

// auditOf returns the audit records of route, waiting until there are
// want of them (the binary batches audit writes for a few ms) and a
// moment longer, to catch a second record.
func (e *upstreamEnv) auditOf(t *testing.T, route string, want int) []map[string]any {
	t.Helper()
	var recs []map[string]any
	read := func() {
		recs = recs[:0]
		data, _ := os.ReadFile(filepath.Join(e.dir, "audit.log"))
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && rec["route"] == route {
				recs = append(recs, rec)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for read(); len(recs) < want && time.Now().Before(deadline); read() {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	read()
	if len(recs) != want {
		t.Fatalf("route %s: %d audit lines, want %d: %v", route, len(recs), want, recs)
	}
	return recs
}

// requestSamples returns the ztproxy_requests_total samples of route
// from the admin listener's /metrics.
func (e *upstreamEnv) requestSamples(t *testing.T, route string) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^ztproxy_requests_total\{[^}]*route="` + route + `"[^}]*\} .*$`)
	return re.FindAllString(e.proc.metrics(t), -1)
}

func (e *upstreamEnv) checkOutcome(t *testing.T, route string, status float64, code string, upstreamStatus float64) {
	t.Helper()
	rec := e.auditOf(t, route, 1)[0]
	if rec["status"] != status || rec["error"] != code || rec["decision"] != "allow" {
		t.Errorf("audit line: status %v error %v decision %v, want %v %s allow", rec["status"], rec["error"], rec["decision"], status, code)
	}
	if upstreamStatus != 0 && rec["upstream_status"] != upstreamStatus {
		t.Errorf("audit line: upstream_status %v, want %v", rec["upstream_status"], upstreamStatus)
	}
	want := fmt.Sprintf(`ztproxy_requests_total{code="%d",decision="allow",route="%s"} 1`, int(status), route)
	if got := e.requestSamples(t, route); len(got) != 1 || got[0] != want {
		t.Errorf("metrics: %q, want exactly %q", got, want)
	}
}

// TestE2EUpstreamFailures runs the real binary against hostile upstreams.
func TestE2EUpstreamFailures(t *testing.T) {
	e := newUpstreamEnv(t)
	base := "http://" + e.public
	client := &http.Client{Timeout: 20 * time.Second}

	// Issue 12.1: a response crossed from one user to another on a
	// reused upstream connection.
	t.Run("stray response does not reach the next user", func(t *testing.T) {
		alice := e.op.CodeFlowTokens(t, e.op.Client(t, "ztproxy"), e.op.User(t, "alice"), "", false)
		bob := e.op.CodeFlowTokens(t, e.op.Client(t, "ztproxy"), e.op.User(t, "bob"), "", false)
		resp, body := get(t, client, base+"/split/alice", map[string]string{"Authorization": "Bearer " + alice.IDToken})
		if resp.StatusCode != 200 || body != "for /split/alice" {
			t.Fatalf("alice: %d %q", resp.StatusCode, body)
		}
		e.split.WaitMark(t, "stray", 5*time.Second)
		time.Sleep(70 * time.Millisecond) // bob asks 100 ms after alice's answer
		resp, body = get(t, client, base+"/split/bob", map[string]string{"Authorization": "Bearer " + bob.IDToken})
		if resp.StatusCode != 200 || body != "for /split/bob" {
			t.Fatalf("bob got %d %q, not his own answer", resp.StatusCode, body)
		}
		if n := e.split.Conns(); n != 2 {
			t.Errorf("upstream connections %d, want 2 (the one with the stray response closed)", n)
		}
		if !strings.Contains(e.proc.output(), "unsolicited response") {
			t.Error("the operational log does not mention the unsolicited response")
		}
	})

	// Issue 22.3: a response that fails mid-body leaves exactly one audit
	// line and one metric sample.
	t.Run("upstream closes mid-body", func(t *testing.T) {
		resp, err := client.Get(base + "/reset/x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Error("the client read a whole body from a cut-off upstream")
		}
		resp.Body.Close()
		e.checkOutcome(t, "reset", 502, "upstream_reset", 200)
	})
	t.Run("route timeout mid-body", func(t *testing.T) {
		resp, err := client.Get(base + "/slow/x")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		e.checkOutcome(t, "slow", 504, "upstream_timeout", 200)
	})
	t.Run("client leaves mid-body", func(t *testing.T) {
		conn, err := net.Dial("tcp", e.public)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET /gone/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 256)
		if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "200 OK") {
			t.Fatalf("first bytes: %q %v", buf[:n], err)
		}
		conn.Close()
		e.checkOutcome(t, "gone", 499, "client_closed", 200)
	})

	// Issue 22.4: upstream 502 and 504 lines carry their error codes.
	t.Run("upstream unavailable", func(t *testing.T) {
		if resp, _ := get(t, client, base+"/refused/x", nil); resp.StatusCode != 502 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		e.checkOutcome(t, "refused", 502, "upstream_unavailable", 0)
	})
	t.Run("upstream timeout", func(t *testing.T) {
		if resp, _ := get(t, client, base+"/silent/x", nil); resp.StatusCode != 504 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		e.checkOutcome(t, "silent", 504, "upstream_timeout", 0)
	})
}

// TestCheckConfigUpstreamTransport: the escape hatch of issue 12.1 is
// validated by check-config like every other key.
func TestCheckConfigUpstreamTransport(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), "permit (principal, action, resource);\n")
	config := func(server, route string) string {
		return fmt.Sprintf(`
listen: "127.0.0.1:8443"
admin_listen: "127.0.0.1:9090"
external_url: "https://ztp.example.com"
insecure_plaintext: true
policies: [p.cedar]
server: {upstream_transport: %s}
routes:
  - {name: a, host: app.example.com, upstream: "http://127.0.0.1:8080", auth: public, upstream_transport: %s}
`, server, route)
	}
	writeFile(t, filepath.Join(dir, "good.yaml"), config("standard", "lean"))
	if code, out := runZtproxy(t, "check-config", "--config", filepath.Join(dir, "good.yaml")); code != 0 {
		t.Fatalf("valid transports: exit %d\n%s", code, out)
	}
	writeFile(t, filepath.Join(dir, "bad.yaml"), config("fast", "h2"))
	code, out := runZtproxy(t, "check-config", "--config", filepath.Join(dir, "bad.yaml"))
	if code != 1 || !strings.Contains(out, "server.upstream_transport") || !strings.Contains(out, "routes[0].upstream_transport") {
		t.Fatalf("bad transports: exit %d\n%s", code, out)
	}
}
