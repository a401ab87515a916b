package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"ztproxy/decide"
	"ztproxy/identity"
	"ztproxy/internal/testenv"
	"ztproxy/upstream"
)

// outcomeProxy is a real HTTP server in front of one public route to
// upstream, with the audit log in memory.
type outcomeProxy struct {
	srv   *httptest.Server
	s     *Server
	audit *syncBuffer
}

func newOutcomeProxy(t *testing.T, upstream string, timeout time.Duration, transport upstream.Mode, authz decide.Authorizer) *outcomeProxy {
	t.Helper()
	if authz == nil {
		authz = mustEngine(t, `permit (principal, action, resource);`)
	}
	cfg := decide.Config{
		ExternalURL: mustURL(t, "https://ztp.example.com"),
		Authorizer:  authz,
		Routes: []decide.RouteConfig{{Name: "app", Host: "*", PathPrefix: "/", Upstream: mustURL(t, upstream), Auth: decide.AuthPublic,
			Timeout: timeout, UpstreamTransport: transport}},
		TrustedProxies: mustPrefixes(t, "127.0.0.0/8"),
	}
	audit := &syncBuffer{}
	s, err := New(cfg, Options{Audit: slog.New(slog.NewJSONHandler(audit, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the re-panics of the panic tests
	srv.Start()
	t.Cleanup(srv.Close)
	return &outcomeProxy{srv: srv, s: s, audit: audit}
}

// lines returns the audit records, waiting up to a second for want of
// them (a handler's record is written as it returns).
func (p *outcomeProxy) lines(t *testing.T, want int) []map[string]any {
	t.Helper()
	var recs []map[string]any
	deadline := time.Now().Add(time.Second)
	for {
		recs = recs[:0]
		for _, l := range strings.Split(strings.TrimSpace(p.audit.String()), "\n") {
			if l == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("audit line %q: %v", l, err)
			}
			recs = append(recs, rec)
		}
		if len(recs) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a second record would show up now
	if n := strings.Count(p.audit.String(), "\n"); n != want {
		t.Fatalf("%d audit lines, want %d:\n%s", n, want, p.audit.String())
	}
	return recs
}

// samples is the number of ztproxy_requests_total samples and the count
// of the one with these labels.
func (p *outcomeProxy) samples(t *testing.T, decision, code string) (int, float64) {
	t.Helper()
	families, err := p.s.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n, v := 0, 0.0
	for _, f := range families {
		if f.GetName() != "ztproxy_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			n++
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == "app" && labels["decision"] == decision && labels["code"] == code {
				v = m.GetCounter().GetValue()
			}
		}
	}
	return n, v
}

// checkOnce checks the one audit line and the one metric sample of an
// allowed request that ended with status.
func (p *outcomeProxy) checkOnce(t *testing.T, status float64, code string, upstreamStatus float64) {
	t.Helper()
	checkRecord(t, p.lines(t, 1)[0], status, code, upstreamStatus)
	if n, v := p.samples(t, "allow", strconv.Itoa(int(status))); n != 1 || v != 1 {
		t.Errorf("metric: %d series, allow/%v = %v", n, status, v)
	}
}

func checkRecord(t *testing.T, rec map[string]any, status float64, errCode string, upstreamStatus float64) {
	t.Helper()
	if rec["status"] != status || rec["error"] != nilIfEmpty(errCode) || rec["upstream_status"] != nilIfZero(upstreamStatus) {
		t.Errorf("audit: status %v error %v upstream_status %v; want %v %q %v", rec["status"], rec["error"], rec["upstream_status"], status, errCode, upstreamStatus)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nilIfZero(f float64) any {
	if f == 0 {
		return nil
	}
	return f
}

// partialHead is a response that promises 100 bytes and sends 7;
// partialStream is a streamed one (flushed to the client at once) that
// sends one chunk and no end.
const (
	partialHead   = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
	partialStream = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n"
)

// TestMidBodyFailuresAreAudited (issue 22.3): a response that fails after
// its header — the upstream closes, the route timeout fires, the client
// leaves — wrote no audit line and no metric, because ReverseProxy
// panics with http.ErrAbortHandler. Each now writes exactly one, with
// what happened, on both upstream transports.
func TestMidBodyFailuresAreAudited(t *testing.T) {
	for _, transport := range []upstream.Mode{upstream.Lean, upstream.Standard} {
		for name, partial := range map[string]string{"upstream closes": partialHead, "upstream closes a stream": partialStream} {
			t.Run(string(transport)+"/"+name, func(t *testing.T) {
				up := testenv.StartHostileUpstream(t, []testenv.Step{testenv.ReadRequest(), testenv.Write(partial), testenv.Sleep(50 * time.Millisecond)})
				p := newOutcomeProxy(t, up.URL, 5*time.Second, transport, nil)
				resp, err := http.Get(p.srv.URL + "/x")
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err == nil {
					t.Fatal("the client got a whole response from a cut-off upstream body")
				}
				p.checkOnce(t, 502, "upstream_reset", 200)
			})
		}
		t.Run(string(transport)+"/route timeout", func(t *testing.T) {
			up := testenv.StartHostileUpstream(t, []testenv.Step{testenv.ReadRequest(), testenv.Write(partialStream), testenv.Sleep(3 * time.Second)})
			p := newOutcomeProxy(t, up.URL, 300*time.Millisecond, transport, nil)
			if resp, err := http.Get(p.srv.URL + "/x"); err == nil {
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			p.checkOnce(t, 504, "upstream_timeout", 200)
		})
		t.Run(string(transport)+"/client leaves", func(t *testing.T) {
			up := testenv.StartHostileUpstream(t, []testenv.Step{testenv.ReadRequest(), testenv.Write(partialStream), testenv.Sleep(3 * time.Second)})
			p := newOutcomeProxy(t, up.URL, 10*time.Second, transport, nil)
			conn, err := net.Dial("tcp", p.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: app\r\n\r\n")
			buf := make([]byte, 64)
			if _, err := conn.Read(buf); err != nil {
				t.Fatal(err)
			}
			conn.Close() // mid-body
			p.checkOnce(t, 499, "client_closed", 200)
		})
	}
}

// TestUpstreamFailuresCarryTheirCode (issue 22.4): 502 and 504 answers
// from upstreamError had no error code in the audit line.
func TestUpstreamFailuresCarryTheirCode(t *testing.T) {
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		return "http://" + l.Addr().String()
	}
	silent := func(t *testing.T) string {
		return testenv.StartHostileUpstream(t, []testenv.Step{testenv.ReadRequest(), testenv.Sleep(3 * time.Second)}).URL
	}
	for _, transport := range []upstream.Mode{upstream.Lean, upstream.Standard} {
		for _, tc := range []struct {
			name     string
			upstream func(*testing.T) string
			status   int
			code     string
		}{
			{"refused", refused, 502, "upstream_unavailable"},
			{"header timeout", silent, 504, "upstream_timeout"},
		} {
			t.Run(string(transport)+"/"+tc.name, func(t *testing.T) {
				p := newOutcomeProxy(t, tc.upstream(t), 200*time.Millisecond, transport, nil)
				resp, err := http.Get(p.srv.URL + "/x")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				p.checkOnce(t, float64(tc.status), tc.code, 0)
			})
		}
	}
}

// panickingAuthorizer stands for a bug anywhere in the decision path.
type panickingAuthorizer struct{}

func (panickingAuthorizer) Decide(*identity.RequestContext) (identity.Decision, error) {
	panic("authorizer bug")
}

// TestPanicsAreAuditedNotForgiven (issue 22.3): a handler that panics
// for any other reason than an aborted response is recorded as an
// internal error (500) on every front door that audits, and is not turned
// into a success: net/http still ends the connection, ext_authz answers
// codes.Internal.
func TestPanicsAreAuditedNotForgiven(t *testing.T) {
	up := testenv.StartHostileUpstream(t, []testenv.Step{testenv.KeepAlive("ok")})
	t.Run("proxied request", func(t *testing.T) {
		p := newOutcomeProxy(t, up.URL, 5*time.Second, "", panickingAuthorizer{})
		if resp, err := http.Get(p.srv.URL + "/x"); err == nil {
			resp.Body.Close()
			t.Fatalf("a panicking handler answered %d", resp.StatusCode)
		}
		rec := p.lines(t, 1)[0]
		checkRecord(t, rec, 500, "internal", 0)
		if rec["decision"] != "error" {
			t.Errorf("decision %v, want error", rec["decision"])
		}
		if n, v := p.samples(t, "error", "500"); n != 1 || v != 1 {
			t.Errorf("metric: %d series, error/500 = %v", n, v)
		}
	})
	t.Run("forward-auth verify", func(t *testing.T) {
		p := newOutcomeProxy(t, up.URL, 5*time.Second, "", panickingAuthorizer{})
		req, _ := http.NewRequest("GET", p.srv.URL+"/.ztp/verify", nil)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "app.example.com")
		req.Header.Set("X-Forwarded-Uri", "/x")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("a panicking verify answered %d", resp.StatusCode)
		}
		checkRecord(t, p.lines(t, 1)[0], 500, "internal", 0)
	})
	t.Run("ext_authz", func(t *testing.T) {
		p := newOutcomeProxy(t, up.URL, 5*time.Second, "", panickingAuthorizer{})
		c := extAuthzClient(t, p.s)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.Check(ctx, envoyCheck("GET", "app.example.com", "/x", nil, ""))
		if status.Code(err) != codes.Internal {
			t.Fatalf("Check: %v, want codes.Internal", err)
		}
		checkRecord(t, p.lines(t, 1)[0], 500, "internal", 0)
	})
	t.Run("abort outside forwarding", func(t *testing.T) {
		x := &exchange{}
		err := x.PanicOutcome(http.ErrAbortHandler)
		if c, _ := decide.StatusOf(err); c != 500 || !errors.Is(err, err) {
			t.Errorf("ErrAbortHandler before forwarding: %v (%d)", err, c)
		}
	})
}

// TestExtAuthzRefusalIsAudited (issue 22.3, same class): an ext_authz
// check from a peer that may not ask returned before its audit line,
// unlike /.ztp/verify's untrusted_peer.
func TestExtAuthzRefusalIsAudited(t *testing.T) {
	up := testenv.StartHostileUpstream(t, []testenv.Step{testenv.KeepAlive("ok")})
	p := newOutcomeProxy(t, up.URL, 5*time.Second, "", nil)
	a := p.s.forwardAuth
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("198.51.100.9"), Port: 4444}})
	if _, err := a.Check(ctx, envoyCheck("GET", "app.example.com", "/x", nil, "")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Check from a stranger: %v", err)
	}
	rec := p.lines(t, 1)[0]
	checkRecord(t, rec, 403, "untrusted_peer", 0)
	if rec["client_ip"] != "198.51.100.9" {
		t.Errorf("client_ip %v, want the gRPC peer", rec["client_ip"])
	}
}
