package listener

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// pipelineFrom builds a pipeline of HTTP/1.1 requests from fuzz bytes:
// each byte picks a request's framing (none, Content-Length, chunked, or
// both in either order), the case of the header names and the body. It
// returns the stream and, for the first chunked request (the connection
// closes after it), whether it also had Content-Length.
func pipelineFrom(data []byte) (stream string, chunkedAt int, conflicting bool) {
	var b strings.Builder
	chunkedAt = -1
	for i, c := range data {
		if i == 6 {
			break
		}
		body := strings.Repeat("x", int(c>>4))
		cl, te := "Content-Length", "Transfer-Encoding"
		if c&8 != 0 {
			cl, te = strings.ToLower(cl), strings.ToUpper(te)
		}
		fmt.Fprintf(&b, "POST /r%d HTTP/1.1\r\nHost: x\r\n", i)
		switch c & 7 {
		case 0, 1:
			fmt.Fprintf(&b, "\r\n")
		case 2, 3:
			fmt.Fprintf(&b, "%s: %d\r\n\r\n%s", cl, len(body), body)
		case 4:
			fmt.Fprintf(&b, "%s: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", te, len(body), body)
		case 5:
			fmt.Fprintf(&b, "%s: %d\r\n%s: chunked\r\n\r\n0\r\n\r\n", cl, len(body), te)
		default:
			fmt.Fprintf(&b, "%s: chunked\r\n%s: 0%d\r\n\r\n0\r\n\r\n", te, cl, len(body))
		}
		if c&7 >= 4 && chunkedAt < 0 {
			chunkedAt, conflicting = i, c&7 >= 5
		}
	}
	// The server closes after a chunked request; otherwise this ends the
	// connection.
	b.WriteString("GET /end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	return b.String(), chunkedAt, conflicting
}

// FuzzConflictingFraming is a differential test against net/http, the
// framing authority: for pipelines of requests with every combination of
// framing headers, the handler of the chunked request (and only that
// one) learns that it also had Content-Length exactly when it had, and
// every request net/http served before it is seen as not conflicting.
func FuzzConflictingFraming(f *testing.F) {
	for _, seed := range [][]byte{{5}, {6}, {4}, {2 | 0x30, 5}, {0, 3 | 0xf0, 13}, {2, 2, 2, 4, 5}, {1, 6 | 0x20}} {
		f.Add(seed)
	}
	rs := startServer(f, Plain, nil)
	dial := func() (net.Conn, error) { return net.Dial("tcp", rs.addr) }
	f.Fuzz(func(t *testing.T, data []byte) {
		stream, chunkedAt, conflicting := pipelineFrom(data)
		before := len(rs.requests())
		send(t, dial, stream)
		got := rs.requests()[before:]
		for _, s := range got {
			if s.path == "/end" {
				if chunkedAt >= 0 {
					t.Fatalf("a request was served after the chunked request %d\n%q", chunkedAt, stream)
				}
				continue
			}
			var i int
			fmt.Sscanf(s.path, "/r%d", &i)
			want := i == chunkedAt && conflicting
			if s.conflicting != want {
				t.Fatalf("request %d: conflicting %v, want %v\n%q", i, s.conflicting, want, stream)
			}
			if i > chunkedAt && chunkedAt >= 0 {
				t.Fatalf("request %d served after the chunked request %d\n%q", i, chunkedAt, stream)
			}
		}
		if chunkedAt < 0 && (len(got) == 0 || got[len(got)-1].path != "/end") {
			t.Fatalf("the pipeline did not reach its end: %v\n%q", got, stream)
		}
		if chunkedAt >= 0 && (len(got) == 0 || got[len(got)-1].path != fmt.Sprintf("/r%d", chunkedAt)) {
			t.Fatalf("the chunked request %d was not the last one served: %v\n%q", chunkedAt, got, stream)
		}
	})
}

// FuzzFramingWatch feeds arbitrary bytes, split at an arbitrary point: the
// watch never panics, reads the same however the bytes arrive, and never
// calls a stream conflicting that lacks either header name.
func FuzzFramingWatch(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"), uint16(20))
	f.Add([]byte(withBody("Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n")), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole := newFramingWatch()
		whole.feed(data)
		cut := int(split) % (len(data) + 1)
		parts := newFramingWatch()
		parts.feed(data[:cut])
		parts.feed(data[cut:])
		if whole.result() != parts.result() {
			t.Fatalf("one read: %v, split at %d: %v", whole.result(), cut, parts.result())
		}
		lower := strings.ToLower(string(data))
		if whole.result() == conflicting && (!strings.Contains(lower, "content-length") || !strings.Contains(lower, "transfer-encoding")) {
			t.Fatalf("conflicting without both headers: %q", data)
		}
	})
}
