package audit

import (
	"io"
	"sync"
	"time"
)

// Writer batches audit lines: one write(2) per request was about a
// tenth of the proxy's CPU under load. Lines are written out at most
// flushInterval after the first one was buffered, as soon as
// bufferSize bytes are waiting, and on Flush and Close. Each Write
// must be whole lines (slog handlers write one record per call), so a
// flush never splits a line.
//
// Close flushes and stops the timer; `ztproxy serve` closes the audit
// writer after draining, so no line is lost on SIGTERM. Writes after
// Close go straight through.
type Writer struct {
	out io.Writer

	writeMu sync.Mutex // serialises writes to out, keeps lines in order

	mu      sync.Mutex // guards the fields below; never held during I/O
	buf     []byte
	spare   []byte
	timer   *time.Timer
	pending bool // the timer is armed
	closed  bool
	err     error // the last write error, returned once by Flush/Close
}

const (
	flushInterval = 5 * time.Millisecond
	bufferSize    = 64 << 10
)

// NewWriter returns a batching writer in front of out.
func NewWriter(out io.Writer) *Writer {
	return &Writer{out: out, buf: make([]byte, 0, bufferSize), spare: make([]byte, 0, bufferSize)}
}

// Write buffers p (one or more whole lines).
func (a *Writer) Write(p []byte) (int, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		a.writeMu.Lock()
		defer a.writeMu.Unlock()
		return a.out.Write(p)
	}
	a.buf = append(a.buf, p...)
	full := len(a.buf) >= bufferSize
	if !full && !a.pending {
		a.pending = true
		if a.timer == nil {
			a.timer = time.AfterFunc(flushInterval, func() { a.Flush() })
		} else {
			a.timer.Reset(flushInterval)
		}
	}
	a.mu.Unlock()
	if full {
		// Back-pressure: the request that filled the buffer writes it.
		a.Flush()
	}
	return len(p), nil
}

// Flush writes out everything buffered so far.
func (a *Writer) Flush() error {
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	a.mu.Lock()
	out := a.buf
	a.buf, a.spare = a.spare[:0], nil
	a.pending = false
	a.mu.Unlock()
	var err error
	if len(out) > 0 {
		_, err = a.out.Write(out)
	}
	a.mu.Lock()
	a.spare = out[:0]
	if err != nil {
		a.err = err
	}
	err, a.err = a.err, nil
	a.mu.Unlock()
	return err
}

// Close flushes and stops batching; it does not close the underlying
// writer (which may be stdout).
func (a *Writer) Close() error {
	a.mu.Lock()
	a.closed = true
	if a.timer != nil {
		a.timer.Stop()
	}
	a.mu.Unlock()
	return a.Flush()
}
