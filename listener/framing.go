package listener

import (
	"bytes"
	"sync/atomic"
)

// Bounds of what the watch keeps. A header line longer than
// maxWatchedLine is still followed to its end, but only its first bytes
// are looked at; a head longer than maxWatchedHead (net/http refuses
// heads above its MaxHeaderBytes, 1 MiB by default, with 431) ends the
// watch.
const (
	maxWatchedLine = 64
	maxWatchedHead = 1<<20 + 64<<10
)

// framingWatch follows the HTTP/1 requests of one connection, byte by
// byte as net/http reads them, just far enough to see which request heads
// carry both Content-Length and Transfer-Encoding.
//
// net/http (Go 1.26) processes such a request by its chunked body and
// deletes Content-Length before any handler runs (golang/go#80942), so a
// handler cannot tell it from a plain chunked request. The watch can: it
// reads the same bytes, splits them into heads and Content-Length bodies,
// and stops at the first head with Transfer-Encoding — the front door
// closes the connection after every chunked request, so no request after
// that one is ever served. Whether that head also had Content-Length is
// what Conflicting reports.
//
// The watch only ever adds a refusal. Wherever it cannot be sure it reads
// the stream as net/http does (a malformed, conflicting or folded
// Content-Length, an empty request line, an upgrade, an overlong head), it
// stops without a verdict and the connection is judged by net/http alone. It
// cannot drift out of step with net/http on a connection net/http keeps:
// net/http reuses a connection only after the request body was read to
// its end, which is exactly what the watch skips.
//
// feed runs on the goroutine reading the connection; Conflicting may be
// called from any goroutine.
type framingWatch struct {
	stopped   bool
	inBody    bool
	remaining int64 // body bytes still to skip

	// The head being read.
	requestLine bool // the next line ends the request line
	headBytes   int
	line        [maxWatchedLine]byte
	lineLen     int
	clSeen      bool
	cl          int64
	clValue     [maxWatchedLine]byte // the first Content-Length value, for duplicates
	clValueLen  int
	te          bool
	upgrade     bool
	// lastWasCL: the previous header line was Content-Length (a folded
	// continuation of it would change its value).
	lastWasCL bool

	conflict atomic.Bool
	// verdict is set once the watch stopped at a head with
	// Transfer-Encoding, so conflict is meaningful.
	verdict atomic.Bool
}

func newFramingWatch() *framingWatch {
	w := &framingWatch{}
	w.startHead()
	return w
}

// Conflicting reports whether the connection's request with
// Transfer-Encoding (there is at most one: the connection closes after
// it) also had Content-Length. It is false when the watch stopped without
// a verdict.
func (w *framingWatch) Conflicting() bool { return w.verdict.Load() && w.conflict.Load() }

func (w *framingWatch) startHead() {
	w.requestLine = true
	w.headBytes, w.lineLen, w.clValueLen = 0, 0, 0
	w.clSeen, w.cl, w.te, w.upgrade, w.lastWasCL = false, 0, false, false, false
}

// feed follows the bytes net/http has just read from the connection.
func (w *framingWatch) feed(p []byte) {
	for len(p) > 0 && !w.stopped {
		if w.inBody {
			n := int64(len(p))
			if n > w.remaining {
				n = w.remaining
			}
			w.remaining -= n
			p = p[n:]
			if w.remaining == 0 {
				w.inBody = false
				w.startHead()
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		w.headBytes += len(chunk) + 1
		if w.headBytes > maxWatchedHead {
			w.stop()
			return
		}
		if w.lineLen < maxWatchedLine {
			w.lineLen += copy(w.line[w.lineLen:], chunk)
		}
		if i < 0 {
			return
		}
		p = p[i+1:]
		truncated := len(chunk) > maxWatchedLine || w.lineLen == maxWatchedLine
		w.endLine(truncated)
		w.lineLen = 0
	}
}

// endLine judges one complete line of a head.
func (w *framingWatch) endLine(truncated bool) {
	line := w.line[:w.lineLen]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	switch {
	case w.requestLine:
		w.requestLine = false
		if len(line) == 0 {
			w.stop() // net/http refuses an empty request line
		}
	case len(line) == 0:
		w.endHead()
	case line[0] == ' ' || line[0] == '\t':
		// obs-fold: net/http joins it to the previous line's value,
		// which changes no header name; a folded Content-Length is
		// refused by net/http (or read differently) and ends the watch.
		if w.lastWasCL {
			w.stop()
		}
	default:
		w.header(line, truncated)
	}
}

// header notes the framing headers of one header line.
func (w *framingWatch) header(line []byte, truncated bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		w.stop() // net/http refuses it (or it was longer than we keep)
		return
	}
	name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
	w.lastWasCL = false
	switch {
	case asciiEqualFold(name, "transfer-encoding"):
		w.te = true
	case asciiEqualFold(name, "upgrade"):
		w.upgrade = true
	case asciiEqualFold(name, "content-length"):
		if truncated {
			w.stop()
			return
		}
		w.lastWasCL = true
		w.contentLength(value)
	}
}

// contentLength parses a Content-Length value as net/http does: digits
// only, duplicates allowed when equal.
func (w *framingWatch) contentLength(value []byte) {
	if w.clSeen {
		if !bytes.Equal(value, w.clValue[:w.clValueLen]) {
			w.stop() // net/http refuses differing values
		}
		return
	}
	n, ok := parseDigits(value)
	if !ok {
		w.stop()
		return
	}
	w.clSeen, w.cl = true, n
	w.clValueLen = copy(w.clValue[:], value)
}

// endHead ends a head: the watch stops at Transfer-Encoding with its
// verdict, stops without one at an upgrade, and otherwise skips the body.
func (w *framingWatch) endHead() {
	switch {
	case w.te:
		w.conflict.Store(w.clSeen)
		w.verdict.Store(true)
		w.stop()
	case w.upgrade:
		w.stop() // the bytes after a 101 are not HTTP
	case w.clSeen && w.cl > 0:
		w.inBody, w.remaining = true, w.cl
	default:
		w.startHead()
	}
}

func (w *framingWatch) stop() { w.stopped = true }

// parseDigits parses a non-empty decimal number without sign that fits
// an int64, as net/http's parseContentLength does.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// asciiEqualFold compares a header name with a lower-case ASCII name.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
