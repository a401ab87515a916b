package listener

import (
	"fmt"
	"strings"
	"testing"
)

// verdict is what a framing watch says about a byte stream.
type verdict int

const (
	noVerdict verdict = iota
	plainChunked
	conflicting
)

func (w *framingWatch) result() verdict {
	switch {
	case !w.verdict.Load():
		return noVerdict
	case w.Conflicting():
		return conflicting
	}
	return plainChunked
}

// TestFramingWatch: issue 12.5, a request with both Content-Length and
// Transfer-Encoding is seen for what it is, wherever it stands in a
// pipeline and however its bytes are split into reads.
func TestFramingWatch(t *testing.T) {
	for _, tt := range []struct {
		name, stream string
		want         verdict
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", conflicting},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", conflicting},
		{"names in any case", "POST / HTTP/1.1\r\ncOnTeNt-LeNgTh: 4\r\ntransfer-ENCODING: chunked\r\n\r\n", conflicting},
		{"bare LF", "POST / HTTP/1.1\nContent-Length: 4\nTransfer-Encoding: chunked\n\n", conflicting},
		{"chunked only", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", plainChunked},
		{"after GET and a Content-Length body", "GET / HTTP/1.1\r\nHost: a\r\n\r\n" +
			withBody("Transfer-Encoding: chunked\r\nContent-Len") +
			"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", conflicting},
		{"a body that looks like a conflicting head", withBody("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: x\r\n\r\n") +
			"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", plainChunked},
		{"Content-Length zero", "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", plainChunked},
		{"equal duplicate Content-Length", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab" +
			"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", conflicting},
		{"differing Content-Length stops the watch", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", noVerdict},
		{"signed Content-Length stops the watch", "POST / HTTP/1.1\r\nContent-Length: +2\r\nTransfer-Encoding: chunked\r\n\r\n", noVerdict},
		{"folded lines are followed", "POST / HTTP/1.1\r\nX: a\r\n b\r\nContent-Length: 1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", conflicting},
		{"folded Content-Length stops the watch", "POST / HTTP/1.1\r\nContent-Length: 1\r\n 2\r\nTransfer-Encoding: chunked\r\n\r\n", noVerdict},
		{"upgrade stops the watch", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", noVerdict},
		{"empty request line stops the watch", "\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", noVerdict},
		{"header without colon stops the watch", "POST / HTTP/1.1\r\nContent-Length 1\r\nTransfer-Encoding: chunked\r\n\r\n", noVerdict},
		{"long Content-Length value stops the watch", "POST / HTTP/1.1\r\nContent-Length: " + strings.Repeat("0", 70) + "1\r\nTransfer-Encoding: chunked\r\n\r\n", noVerdict},
		{"long other headers are followed", "POST / HTTP/1.1\r\nX-Long: " + strings.Repeat("y", 5000) + "\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", conflicting},
		{"unfinished head", "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n", noVerdict},
		{"no chunked request", "GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", noVerdict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			whole := newFramingWatch()
			whole.feed([]byte(tt.stream))
			if got := whole.result(); got != tt.want {
				t.Errorf("in one read: %v, want %v", got, tt.want)
			}
			bytewise := newFramingWatch()
			for i := 0; i < len(tt.stream); i++ {
				bytewise.feed([]byte{tt.stream[i]})
			}
			if got := bytewise.result(); got != tt.want {
				t.Errorf("a byte per read: %v, want %v", got, tt.want)
			}
		})
	}
}

// withBody is a POST whose Content-Length body is body.
func withBody(body string) string {
	return fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// TestFramingWatchBoundsTheHead: a head that never ends stops the watch.
func TestFramingWatchBoundsTheHead(t *testing.T) {
	w := newFramingWatch()
	w.feed([]byte("GET / HTTP/1.1\r\n"))
	line := []byte("X: " + strings.Repeat("a", 4093) + "\r\n")
	for i := 0; i < 300 && !w.stopped; i++ {
		w.feed(line)
	}
	if !w.stopped || w.result() != noVerdict {
		t.Fatalf("stopped %v, verdict %v", w.stopped, w.result())
	}
}
