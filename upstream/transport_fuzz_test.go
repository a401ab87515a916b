package upstream

import (
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// FuzzTransportHostileResponse (issue 12.1): an upstream answers the first
// request with arbitrary bytes, then sends arbitrary unsolicited bytes on
// the same connection. The lean transport must
//
//   - reject the first response wherever net/http's Transport rejects it
//     (the 1xx and 101 cases of the corpus table are the known, stricter
//     exceptions: a response with more than 16 informational responses or
//     a 101 is not compared);
//   - give the second request its own answer or an error, never any byte
//     of the first exchange or of the unsolicited tail.
//
// Seeds are the corpus table's responses, so they run in every go test.
func FuzzTransportHostileResponse(f *testing.F) {
	for _, seed := range []struct{ resp, stray string }{
		{"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nown {{path}}", strayResponse},
		{"HTTP/1.1 204 No Content\r\n\r\n", strayResponse},
		{"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nSTRAY", ""},
		{"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 40\r\n\r\nown {{path}}", ""},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nown {{path}}", ""},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nown {{path}}\r\n0\r\nX-Sum: 1\r\n\r\n", "HTTP/1.1 100 Continue\r\n\r\n"},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ""},
		{"HTTP/1.1 200 OK\nContent-Length: 9\n\nown {{path}}", "STRAY"},
		{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 9\r\n\r\nown {{path}}", strayResponse},
		{"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 9\r\n\r\nown {{path}}", ""},
		{"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nown {{path}}", "HTTP/1.1 408 Request Timeout\r\n\r\n"},
		{"HTTP/1.1 200 OK\r\n\r\nown {{path}}", ""},
	} {
		f.Add([]byte(seed.resp), []byte(seed.stray))
	}
	transports := hostileTransports()
	f.Fuzz(func(t *testing.T, resp, stray []byte) {
		if len(resp) > 8<<10 || len(stray) > 8<<10 {
			t.Skip()
		}
		// The marker must come from the script, not the fuzzer's bytes.
		clean := func(b []byte) string { return strings.ReplaceAll(string(b), "/ex/2", "/ex/-") }
		scripts := [][]testenv.Step{
			{testenv.ReadRequest(), testenv.Write(clean(resp)), testenv.Write(clean(stray)), testenv.Mark("stray"),
				testenv.ReadRequestWithin(20 * time.Millisecond), own},
			keep,
		}
		std := transports["standard"]()
		defer std.CloseIdleConnections()
		up := testenv.StartHostileUpstream(t, scripts...)
		first := hostileExchange(std, "GET", up.URL+"/ex/1")

		lean := transports["lean"]()
		defer lean.CloseIdleConnections()
		up = testenv.StartHostileUpstream(t, scripts...)
		got := hostileExchange(lean, "GET", up.URL+"/ex/1")
		up.WaitMark(t, "stray", 5*time.Second)
		second := hostileExchange(lean, "GET", up.URL+"/ex/2")

		if !first.ok() && got.ok() && !strings.Contains(first.err.Error(), "timeout") {
			t.Errorf("net/http rejected the response (%v) but the lean transport accepted it: %v", first.err, got)
		}
		// The only answers to the second request are the script's own:
		// a 200 with two headers, "own /ex/2", and no informational
		// response before it.
		if second.ok() && (second.status != 200 || second.body != "own /ex/2" || len(second.header) != 2 ||
			!strings.HasPrefix(second.text, "200 OK\n")) {
			t.Errorf("second exchange got %q, not its own answer", second.text)
		}
	})
}
