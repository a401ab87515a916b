package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"
)

// leanConn is one keep-alive connection to an upstream. It is used by one
// request at a time: taken from the pool, or dialled, by RoundTrip, and
// given back by the response body at a clean EOF.
type leanConn struct {
	t     *leanTransport
	addr  string
	conn  net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	nread int64 // bytes read from conn, to tell "no response byte yet"
	// readLimit, while reading a response head, is the nread at which
	// reading fails with errHeaderTooLarge; 0 means no limit.
	readLimit int64
	reused    bool
	idleAt    time.Time
	// checkWrite is set while an exchange has not written its first byte:
	// that write first makes sure nothing arrived since the last response
	// ended (see idleCheck).
	checkWrite bool
	// raw peeks at the socket without reading from it; nil when the
	// connection cannot be checked (not a syscall.Conn, or no peek on
	// this platform), and such a connection is never reused.
	raw  syscall.RawConn
	peek peeker
}

func newLeanConn(t *leanTransport, addr string, conn net.Conn) *leanConn {
	c := &leanConn{t: t, addr: addr, conn: conn}
	c.br = bufio.NewReaderSize(countingReader{c}, 4096)
	c.bw = bufio.NewWriterSize(checkedWriter{c}, 4096)
	c.initPeek()
	return c
}

// checkedWriter is the connection's write side: the first write of an
// exchange runs the idle check, at the last moment before a request byte
// leaves.
type checkedWriter struct{ c *leanConn }

func (w checkedWriter) Write(p []byte) (int, error) {
	c := w.c
	if c.checkWrite {
		c.checkWrite = false
		if err := c.idleCheck(); err != nil {
			return 0, err
		}
	}
	return c.conn.Write(p)
}

// idleCheck fails when the upstream closed the connection or sent
// anything on it since the last response ended. Nothing of the request
// has been written yet, so the caller may always try another connection.
func (c *leanConn) idleCheck() error {
	if c.br.Buffered() > 0 {
		return errUnsolicited
	}
	switch c.peekIdle() {
	case idleClean:
		return nil
	case idleClosed:
		return errIdleClosed
	case idleUnknown:
		if !c.reused {
			return nil // a fresh connection never carried an exchange
		}
		return errIdleUnchecked
	}
	return errUnsolicited
}

// countingReader counts the bytes read from the connection.
type countingReader struct{ c *leanConn }

func (r countingReader) Read(p []byte) (int, error) {
	if r.c.readLimit > 0 && r.c.nread >= r.c.readLimit {
		return 0, errHeaderTooLarge
	}
	n, err := r.c.conn.Read(p)
	r.c.nread += int64(n)
	return n, err
}

func (c *leanConn) close() { c.conn.Close() }

// aLongTimeAgo is a deadline in the past: it makes blocked reads and
// writes on a connection return at once.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes req and reads the response headers. On error the
// connection is closed; an error before any response byte is a
// *staleConnError. On success the response body owns the connection.
func (c *leanConn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	if d := c.t.responseHeaderTimeout; d > 0 {
		c.conn.SetReadDeadline(time.Now().Add(d))
	}
	// Cancelling the context (client gone, route timeout) unblocks any
	// read or write on the connection; it is never reused afterwards.
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error, before int64) (*http.Response, error) {
		stop()
		c.close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, headerTimeoutError(err)
		}
		if c.nread == before {
			return nil, &staleConnError{err}
		}
		return nil, err
	}
	before := c.nread
	c.checkWrite = true
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		if errors.Is(err, errNotIdle) {
			stop()
			c.close()
			return nil, err
		}
		return fail(err, before)
	}
	resp, err := c.readHead(ctx, req)
	if err != nil {
		// (A 1xx read before the error makes it not stale.)
		return fail(err, before)
	}
	if c.t.responseHeaderTimeout > 0 {
		c.conn.SetReadDeadline(time.Time{})
		// A cancel between the headers and clearing the deadline had its
		// deadline overwritten: look at the context itself.
		if ctx.Err() != nil {
			return fail(ctx.Err(), -1)
		}
	}
	reusable := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		c.release(stop, reusable)
		return resp, nil
	}
	resp.Body = &leanBody{body: resp.Body, c: c, ctx: ctx, stop: stop, reusable: reusable}
	return resp, nil
}

// readHead reads the final response head, passing 1xx responses to the
// trace hook; the whole head, 1xx included, is bounded by
// maxResponseHeaderBytes.
func (c *leanConn) readHead(ctx context.Context, req *http.Request) (*http.Response, error) {
	c.readLimit = c.nread + c.t.maxResponseHeaderBytes
	defer func() { c.readLimit = 0 }()
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode < 100 || resp.StatusCode > 199:
			return resp, nil
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errUnexpectedSwitch
		case n >= maxInformational:
			return nil, errors.New("proxy: too many 1xx responses from the upstream")
		}
		if err := informational(ctx, resp); err != nil {
			return nil, err
		}
	}
}

// release ends an exchange: the connection goes back to the pool if it
// may be reused, the context did not fire, no stray bytes are buffered
// and its idle state can be checked before the next use; otherwise it is
// closed.
func (c *leanConn) release(stop func() bool, reusable bool) {
	if stop() && reusable && c.br.Buffered() == 0 && c.raw != nil {
		c.t.put(c)
		return
	}
	c.close()
}

// leanBody is a response body that hands its connection back at EOF.
type leanBody struct {
	body     io.ReadCloser
	c        *leanConn
	ctx      context.Context
	stop     func() bool
	reusable bool
	done     atomic.Bool
	eof      bool
}

var errBodyClosed = errors.New("proxy: read on closed upstream response body")

func (b *leanBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		if b.eof {
			return 0, io.EOF
		}
		return 0, errBodyClosed
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		if b.done.CompareAndSwap(false, true) {
			b.eof = true
			b.c.release(b.stop, b.reusable)
		}
	case err != nil:
		if b.done.CompareAndSwap(false, true) {
			b.stop()
			b.c.close()
		}
		if cerr := b.ctx.Err(); cerr != nil {
			err = cerr
		}
	}
	return n, err
}

// Close closes the connection unless the body was read to its end: the
// unread rest would otherwise be taken for the next response.
func (b *leanBody) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.stop()
		b.c.close()
	}
	return nil
}
