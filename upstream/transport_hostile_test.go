package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// This file is the differential corpus of issue 12.1: the lean transport
// and net/http's Transport face the same hostile upstreams
// (testenv.HostileUpstream), and the lean one must never be less safe.
// For every exchange:
//
//   - no bytes of another exchange are delivered as its response: a
//     response must not carry "STRAY" (what scripts mark unsolicited or
//     leftover bytes with) nor another exchange's path;
//   - where net/http's Transport rejects the response, the lean transport
//     rejects it too; where it accepts, the lean one gives the same status
//     and body, unless the case names why the lean one is stricter.
//
// Exchange k requests /ex/k; scripts answer with "own {{path}}" (9 bytes).

// own is a well-formed answer that names its exchange.
var own = testenv.Respond("own {{path}}")

// keep serves every request of a connection with own.
var keep = []testenv.Step{testenv.KeepAlive("own {{path}}")}

// strayResponse is a complete response no request asked for.
var strayResponse = testenv.HostileResponse(200, "STRAY: the previous user's private data")

type hostileRequest struct {
	method string
	after  string // wait until the upstream reached this mark
}

type hostileCase struct {
	name    string
	scripts [][]testenv.Step
	reqs    []hostileRequest
	// want is the lean transport's outcome per exchange: "ok", "err" or
	// "" (either; the comparison with net/http decides).
	want []string
	// leanStricter, when set, says why the lean transport may reject an
	// exchange net/http's Transport accepts.
	leanStricter string
}

// get1 and friends spell the usual request sequences.
var (
	get1         = []hostileRequest{{method: "GET"}}
	getGet       = []hostileRequest{{method: "GET"}, {method: "GET"}}
	getThenStray = []hostileRequest{{method: "GET"}, {method: "GET", after: "stray"}}
)

// answer writes a raw response head and the 9-byte own body.
func answer(head string) testenv.Step { return testenv.Write(head + "\r\n\r\nown {{path}}") }

// badThenKeep: connection 1 answers the first request with raw and
// answers normally after it (if the client keeps it); later connections
// answer normally.
func badThenKeep(raw string) [][]testenv.Step {
	return [][]testenv.Step{{testenv.ReadRequest(), testenv.Write(raw), testenv.KeepAlive("own {{path}}")}, keep}
}

// answerThenStray: the first response, then (after pause) an unsolicited
// one on the same connection, then the connection would serve the next
// request — which must not get the stray bytes.
func answerThenStray(first testenv.Step, pause time.Duration, stray string) [][]testenv.Step {
	return [][]testenv.Step{{testenv.ReadRequest(), first, testenv.Sleep(pause), testenv.Write(stray), testenv.Mark("stray"),
		testenv.ReadRequest(), own, testenv.Drain()}, keep}
}

func hostileCases() []hostileCase {
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	early := [][]testenv.Step{{testenv.ReadRequestLine(), own, testenv.ReadRestOfHead(), testenv.KeepAlive("own {{path}}")}}
	oneXX := strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", 20)
	cases := []hostileCase{
		// Unsolicited bytes on an idle keep-alive connection.
		{name: "stray response 30ms after the answer (issue 12.1)", scripts: answerThenStray(own, 30*time.Millisecond, strayResponse),
			reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "stray response right behind the answer", scripts: answerThenStray(own, 0, strayResponse), reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "two responses in one write", scripts: [][]testenv.Step{{testenv.ReadRequest(),
			testenv.Write("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nown {{path}}" + strayResponse), testenv.Mark("stray"), testenv.ReadRequest(), own, testenv.Drain()}, keep},
			reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "stray 408 then close", scripts: answerThenStray(own, 10*time.Millisecond, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 7\r\n\r\nSTRAY!!"),
			reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "stray bytes that are not a response", scripts: answerThenStray(own, 10*time.Millisecond, "STRAY garbage\r\n"), reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "stray 100 Continue on the idle connection", scripts: answerThenStray(own, 10*time.Millisecond, "HTTP/1.1 100 Continue\r\nX-Stray: STRAY\r\n\r\n"),
			reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "stray response after a 204", scripts: answerThenStray(testenv.Write("HTTP/1.1 204 No Content\r\n\r\n"), 20*time.Millisecond, strayResponse),
			reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "stray response after a chunked body with trailers", scripts: answerThenStray(testenv.Write(chunked+"9\r\nown {{path}}\r\n0\r\nX-Sum: 1\r\n\r\n"), 20*time.Millisecond, strayResponse),
			reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "idle close (FIN)", scripts: [][]testenv.Step{{testenv.ReadRequest(), own, testenv.Mark("stray")}, keep}, reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "idle reset (RST)", scripts: [][]testenv.Step{{testenv.ReadRequest(), own, testenv.Mark("stray"), testenv.Reset()}, keep}, reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "closed on the next request without an answer", scripts: [][]testenv.Step{{testenv.ReadRequest(), own, testenv.ReadRequest()}, keep},
			reqs: getGet, want: []string{"ok", "ok"}},

		// Responses that arrive before the request was read.
		{name: "answer before the request head was read", scripts: early, reqs: getGet, want: []string{"ok", "ok"}},

		// Bodies where none may be.
		{name: "204 with a body", scripts: answerThenStray(testenv.Write("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nSTRAY"), 0, ""), reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "304 with a body", scripts: answerThenStray(testenv.Write("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"), 20*time.Millisecond, strayResponse),
			reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "HEAD answered with a body", scripts: answerThenStray(testenv.Write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), 0, "STRAY"),
			reqs: []hostileRequest{{method: "HEAD"}, {method: "GET", after: "stray"}}, want: []string{"ok", "ok"}},
		{name: "HEAD answered with a whole response as its body", scripts: answerThenStray(testenv.Write("HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n"), 20*time.Millisecond, strayResponse),
			reqs: []hostileRequest{{method: "HEAD"}, {method: "GET", after: "stray"}}, want: []string{"ok", "ok"}},
		{name: "Content-Length: 0 with a body", scripts: answerThenStray(testenv.Write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 0, strayResponse),
			reqs: getThenStray, want: []string{"ok", "ok"}},

		// Framing: Content-Length.
		{name: "duplicate identical Content-Length", scripts: [][]testenv.Step{{testenv.ReadRequest(), answer("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 9"), testenv.KeepAlive("own {{path}}")}},
			reqs: getGet, want: []string{"ok", "ok"}},
		{name: "conflicting Content-Length", scripts: badThenKeep("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 40\r\n\r\nown {{path}}STRAY"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "Content-Length list", scripts: badThenKeep("HTTP/1.1 200 OK\r\nContent-Length: 9, 40\r\n\r\nown {{path}}"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "negative Content-Length", scripts: badThenKeep("HTTP/1.1 200 OK\r\nContent-Length: -9\r\n\r\nown {{path}}"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "huge Content-Length", scripts: badThenKeep("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nown {{path}}"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "Content-Length with a plus sign", scripts: badThenKeep("HTTP/1.1 200 OK\r\nContent-Length: +9\r\n\r\nown {{path}}"), reqs: getGet},
		{name: "Content-Length longer than the body, then close", scripts: [][]testenv.Step{{testenv.ReadRequest(), answer("HTTP/1.1 200 OK\r\nContent-Length: 50")}, keep},
			reqs: getGet, want: []string{"err", "ok"}},
		{name: "Content-Length shorter than the body", scripts: answerThenStray(answer("HTTP/1.1 200 OK\r\nContent-Length: 3"), 0, "STRAY"), reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "Content-Length and chunked", scripts: [][]testenv.Step{{testenv.ReadRequest(), testenv.Write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nown {{path}}\r\n0\r\n\r\n"), testenv.KeepAlive("own {{path}}")}, keep},
			reqs: getGet},
		{name: "close-delimited HTTP/1.1 body", scripts: [][]testenv.Step{{testenv.ReadRequest(), answer("HTTP/1.1 200 OK")}, keep}, reqs: getGet, want: []string{"ok", "ok"}},

		// Framing: chunked.
		{name: "chunk size not hex", scripts: badThenKeep(chunked + "zz\r\nown {{path}}\r\n0\r\n\r\n"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "negative chunk size", scripts: badThenKeep(chunked + "-9\r\nown {{path}}\r\n0\r\n\r\n"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "chunk size overflow", scripts: badThenKeep(chunked + "fffffffffffffffff\r\nown {{path}}\r\n0\r\n\r\n"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "chunk longer than its size", scripts: badThenKeep(chunked + "3\r\nown {{path}}\r\n0\r\n\r\n"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "chunk extension", scripts: [][]testenv.Step{{testenv.ReadRequest(), testenv.Write(chunked + "9;a=b\r\nown {{path}}\r\n0\r\n\r\n"), testenv.KeepAlive("own {{path}}")}},
			reqs: getGet, want: []string{"ok", "ok"}},
		{name: "bare LF in chunk framing", scripts: badThenKeep(chunked + "9\nown {{path}}\n0\n\n"), reqs: getGet},
		{name: "chunked body cut off", scripts: [][]testenv.Step{{testenv.ReadRequest(), testenv.Write(chunked + "9\r\nown {{path}}\r\n")}, keep}, reqs: getGet, want: []string{"err", "ok"}},
		{name: "trailer bomb", scripts: badThenKeep(chunked + "0\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 100)+"\r\n", 100) + "\r\n"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "stray after the last chunk", scripts: answerThenStray(testenv.Write(chunked+"9\r\nown {{path}}\r\n0\r\n\r\nSTRAY"), 0, ""), reqs: getThenStray, want: []string{"ok", "ok"}},

		// Framing: Transfer-Encoding variants.
		{name: "Transfer-Encoding: identity", scripts: badThenKeep("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nown {{path}}"), reqs: getGet},
		{name: "Transfer-Encoding: gzip, chunked", scripts: badThenKeep("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n9\r\nown {{path}}\r\n0\r\n\r\n"), reqs: getGet},
		{name: "Transfer-Encoding: chunked, identity", scripts: badThenKeep("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n9\r\nown {{path}}\r\n0\r\n\r\n"), reqs: getGet},
		{name: "Transfer-Encoding twice", scripts: badThenKeep("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nown {{path}}\r\n0\r\n\r\n"), reqs: getGet},
		{name: "Transfer-Encoding: Chunked (case)", scripts: badThenKeep("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n9\r\nown {{path}}\r\n0\r\n\r\n"), reqs: getGet},
		{name: "Transfer-Encoding: xchunked", scripts: badThenKeep("HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n9\r\nown {{path}}\r\n0\r\n\r\n"), reqs: getGet},
		{name: "Transfer-Encoding in HTTP/1.0", scripts: [][]testenv.Step{{testenv.ReadRequest(), testenv.Write("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nown {{path}}\r\n0\r\n\r\n")}, keep}, reqs: getGet},

		// Connection management.
		{name: "HTTP/1.0 keep-alive", scripts: [][]testenv.Step{{testenv.ReadRequest(), answer("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 9"),
			testenv.ReadRequest(), answer("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 9"), testenv.Drain()}, keep}, reqs: getGet, want: []string{"ok", "ok"}},
		{name: "HTTP/1.0 without keep-alive keeps the connection open", scripts: answerThenStray(answer("HTTP/1.0 200 OK\r\nContent-Length: 9"), 0, strayResponse),
			reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "Connection: close, then more bytes", scripts: answerThenStray(answer("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 9"), 0, strayResponse),
			reqs: getThenStray, want: []string{"ok", "ok"}},
		{name: "closed without a response", scripts: [][]testenv.Step{{testenv.ReadRequest()}, keep}, reqs: getGet, want: []string{"err", "ok"}},
		{name: "cut off in the header", scripts: [][]testenv.Step{{testenv.ReadRequest(), testenv.Write("HTTP/1.1 200 OK\r\nContent-Le")}, keep}, reqs: getGet, want: []string{"err", "ok"}},

		// Heads.
		{name: "header-size bomb", scripts: badThenKeep("HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 100) + "Content-Length: 9\r\n\r\nown {{path}}"),
			reqs: getGet, want: []string{"err", "ok"}},
		{name: "header line without end", scripts: badThenKeep("HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("a", 100<<10)), reqs: getGet, want: []string{"err", "ok"}},
		{name: "1xx within bounds", scripts: [][]testenv.Step{{testenv.ReadRequest(), testenv.Write(strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 5)), own, testenv.KeepAlive("own {{path}}")}},
			reqs: getGet, want: []string{"ok", "ok"}},
		{name: "1xx flood", scripts: badThenKeep(oneXX + "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nown {{path}}"), reqs: getGet, want: []string{"err", "ok"},
			leanStricter: "the lean transport allows 16 informational responses; net/http counts only their bytes, and ReverseProxy's 1xx hook resets that count for each one, so a flood of small 1xx never ends there"},
		{name: "101 without an upgrade request", scripts: badThenKeep("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nSTRAY"), reqs: getGet, want: []string{"err", "ok"},
			leanStricter: "net/http's Transport returns the 101 and ReverseProxy then answers 502; the lean transport fails at once"},
		{name: "bare LF head", scripts: [][]testenv.Step{{testenv.ReadRequest(), testenv.Write("HTTP/1.1 200 OK\nContent-Length: 9\n\nown {{path}}"), testenv.KeepAlive("own {{path}}")}}, reqs: getGet},
		{name: "obs-fold in a header", scripts: [][]testenv.Step{{testenv.ReadRequest(), answer("HTTP/1.1 200 OK\r\nX-Folded: a\r\n folded\r\nContent-Length: 9"), testenv.KeepAlive("own {{path}}")}},
			reqs: getGet},
		{name: "space in a header name", scripts: badThenKeep("HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 9\r\n\r\nown {{path}}"), reqs: getGet},
		{name: "NUL in a header value", scripts: badThenKeep("HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nContent-Length: 9\r\n\r\nown {{path}}"), reqs: getGet},
		{name: "malformed status code", scripts: badThenKeep("HTTP/1.1 2OO OK\r\nContent-Length: 9\r\n\r\nown {{path}}"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "not HTTP", scripts: badThenKeep("ICY 200 OK\r\n\r\nown {{path}}"), reqs: getGet, want: []string{"err", "ok"}},
		{name: "HTTP/2.0 status line", scripts: badThenKeep("HTTP/2.0 200 OK\r\nContent-Length: 9\r\n\r\nown {{path}}"), reqs: getGet},
		{name: "slow head past the header timeout", scripts: [][]testenv.Step{{testenv.ReadRequest(), testenv.Write("HTTP/1.1 200 OK\r\n"), testenv.Sleep(time.Second), answer("Content-Length: 9")}, keep},
			reqs: getGet, want: []string{"err", "ok"}},
	}
	return cases
}

// exchangeResult is what a client saw for one exchange.
type exchangeResult struct {
	status int
	header http.Header
	body   string
	text   string // informational responses, status line, header and trailer values, body
	err    error
}

func (r exchangeResult) ok() bool { return r.err == nil }

func (r exchangeResult) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %q", r.status, r.body)
}

// hostileTransports are the two candidates, with the same limits.
func hostileTransports() map[string]func() Transport {
	std := func() *http.Transport {
		return &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute, DisableCompression: true,
			ResponseHeaderTimeout: 500 * time.Millisecond, MaxResponseHeaderBytes: 64 << 10}
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return map[string]func() Transport{
		"lean":     func() Transport { return newLeanTransport(std(), d.DialContext) },
		"standard": func() Transport { return std() },
	}
}

// hostileExchange does one request as ReverseProxy would (with a 1xx
// hook) and reads the whole response.
func hostileExchange(rt http.RoundTripper, method, url string) exchangeResult {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// Informational responses reach the client too (ReverseProxy relays
	// them), so they count as part of the exchange's response.
	var text strings.Builder
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		fmt.Fprintf(&text, "%d %v\n", code, h)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return exchangeResult{err: err}
	}
	defer resp.Body.Close()
	r := exchangeResult{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// (A 101's body is the raw connection in net/http; nothing ends it.)
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return exchangeResult{err: fmt.Errorf("body: %w", err)}
		}
		r.body = string(body)
	}
	fmt.Fprintf(&text, "%s\n%v\n%v\n%s", resp.Status, resp.Header, resp.Trailer, r.body)
	r.text = text.String()
	return r
}

// hostileSettle gives net/http's read loop time to notice stray bytes
// before the next exchange (the lean transport checks synchronously).
const hostileSettle = 50 * time.Millisecond

// runHostile plays a case against a fresh upstream with rt.
func runHostile(t *testing.T, rt http.RoundTripper, c hostileCase) []exchangeResult {
	up := testenv.StartHostileUpstream(t, c.scripts...)
	var out []exchangeResult
	for k, r := range c.reqs {
		if r.after != "" {
			up.WaitMark(t, r.after, 5*time.Second)
			time.Sleep(hostileSettle)
		}
		out = append(out, hostileExchange(rt, r.method, fmt.Sprintf("%s/ex/%d", up.URL, k+1)))
	}
	return out
}

// foreignBytes says what in exchange k's response belongs to another
// exchange, or "".
func foreignBytes(k int, r exchangeResult) string {
	if !r.ok() {
		return ""
	}
	if strings.Contains(r.text, "STRAY") {
		return "unsolicited bytes (STRAY)"
	}
	for j := 1; j <= 9; j++ {
		if j != k && strings.Contains(r.text, fmt.Sprintf("/ex/%d", j)) {
			return fmt.Sprintf("the answer of exchange %d", j)
		}
	}
	return ""
}

// TestTransportHostileUpstreams is the differential corpus (issue 12.1):
// the lean transport is never less safe than net/http's Transport.
func TestTransportHostileUpstreams(t *testing.T) {
	transports := hostileTransports()
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			results := map[string][]exchangeResult{}
			for name, mk := range transports {
				rt := mk()
				results[name] = runHostile(t, rt, c)
				rt.CloseIdleConnections()
			}
			lean, std := results["lean"], results["standard"]
			for k := range c.reqs {
				t.Logf("exchange %d: lean %v; net/http %v", k+1, lean[k], std[k])
				checkHostileExchange(t, c, k, lean[k], std[k])
			}
		})
	}
}

func checkHostileExchange(t *testing.T, c hostileCase, k int, lean, std exchangeResult) {
	t.Helper()
	n := k + 1
	if f := foreignBytes(n, lean); f != "" {
		t.Errorf("exchange %d: lean transport delivered %s: %v", n, f, lean)
	}
	if f := foreignBytes(n, std); f != "" {
		t.Errorf("exchange %d: net/http delivered %s: %v (the corpus expects net/http to be safe here)", n, f, std)
	}
	switch {
	case !std.ok() && lean.ok():
		t.Errorf("exchange %d: net/http rejected (%v) but the lean transport accepted: %v", n, std.err, lean)
	case std.ok() && !lean.ok() && c.leanStricter == "":
		t.Errorf("exchange %d: the lean transport rejected (%v) what net/http accepted: %v", n, lean.err, std)
	case std.ok() && lean.ok() && (std.status != lean.status || std.body != lean.body):
		t.Errorf("exchange %d: lean %v, net/http %v", n, lean, std)
	}
	if k < len(c.want) && c.want[k] != "" {
		if got := map[bool]string{true: "ok", false: "err"}[lean.ok()]; got != c.want[k] {
			t.Errorf("exchange %d: lean outcome %s (%v), want %s", n, got, lean, c.want[k])
		}
	}
}
