package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"
)

// leanTransport is the upstream RoundTripper for plain HTTP/1.1 requests
// without a body (the bulk of proxied traffic: GET, HEAD, body-less
// DELETE/OPTIONS …). It does the exchange on the caller's goroutine: take an
// idle keep-alive connection (or dial one), write the request, read the
// response. net/http's Transport hands every request to a writeLoop and a
// readLoop goroutine per connection; on a CPU-bound proxy those hand-offs,
// their wake-ups and the extra goroutine stacks GC scans cost more than the
// proxying itself (see docs/performance.md).
//
// Everything else — https upstreams (HTTP/2, TLS), requests with a body,
// Expect: 100-continue, protocol upgrades (WebSocket) — goes to fallback,
// a standard *http.Transport.
//
// A connection goes back to the pool only after its response body was read
// to a clean EOF with nothing left in the read buffer, and neither side asked
// to close it. Before every reuse — at the moment the first request byte
// would be written — a non-blocking recv(MSG_PEEK) checks that nothing
// arrived on it since that response ended; a close or any unsolicited byte
// (a stray second response, a 408) closes it and the request goes to
// another connection. So a connection never carries bytes of an earlier
// exchange into the next one. A connection that cannot be peeked (not a
// syscall.Conn, or a platform without MSG_PEEK) is never reused.
//
// What no client can close: bytes the upstream sends after that check but
// before it has read the new request are indistinguishable from the answer
// to it (net/http's Transport has the same window: once a request is
// assigned to a connection, the next bytes are its response). Checking at
// the first write, not when the connection leaves the pool, keeps the
// window to the write syscall and the request's trip to the upstream.
type leanTransport struct {
	fallback *http.Transport
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	// responseHeaderTimeout bounds the wait for the response headers after
	// the request was written; 0 means no limit beyond the context.
	responseHeaderTimeout time.Duration
	idleTimeout           time.Duration // 0: no limit
	maxIdlePerHost        int
	// maxResponseHeaderBytes bounds the response head (1xx included).
	maxResponseHeaderBytes int64

	// onUnsolicited, when set, is told about a connection closed because
	// the upstream sent bytes on it while it was idle.
	onUnsolicited func()

	mu    sync.Mutex
	idle  map[string][]*leanConn // per host:port, most recently used last
	sweep *time.Timer            // closes connections idle for idleTimeout
}

var _ http.RoundTripper = (*leanTransport)(nil)

// maxInformational bounds the 1xx responses read before the final one.
const maxInformational = 16

// newLeanTransport takes its limits from fallback's settings, with
// http.Transport's meaning of zero values.
func newLeanTransport(fallback *http.Transport, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *leanTransport {
	t := &leanTransport{
		fallback:               fallback,
		dial:                   dial,
		responseHeaderTimeout:  fallback.ResponseHeaderTimeout,
		idleTimeout:            fallback.IdleConnTimeout,
		maxIdlePerHost:         fallback.MaxIdleConnsPerHost,
		maxResponseHeaderBytes: fallback.MaxResponseHeaderBytes,
		idle:                   map[string][]*leanConn{},
	}
	if t.maxIdlePerHost <= 0 {
		t.maxIdlePerHost = http.DefaultMaxIdleConnsPerHost
	}
	if t.maxResponseHeaderBytes <= 0 {
		t.maxResponseHeaderBytes = 10 << 20 // http.Transport's default
	}
	return t
}

// leanEligible reports whether req can take the lean path.
func leanEligible(req *http.Request) bool {
	return req.URL.Scheme == "http" && req.URL.Host != "" &&
		(req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0 &&
		req.Method != http.MethodConnect && len(req.Trailer) == 0 &&
		req.Header["Upgrade"] == nil && req.Header["Expect"] == nil
}

// RoundTrip implements http.RoundTripper.
func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !leanEligible(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	addr := hostPort(req.URL.Host)
	idempotent := isIdempotent(req.Method)
	retried := false
	for {
		c, err := t.getConn(ctx, addr)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(ctx, req)
		if err == nil {
			return resp, nil
		}
		if errors.Is(err, errUnsolicited) && t.onUnsolicited != nil {
			t.onUnsolicited()
		}
		// An idle connection that failed its check carried no byte of
		// this request: any method may go to the next one. The pool is
		// finite and a fresh connection is not retried, so this ends.
		if errors.Is(err, errNotIdle) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if c.reused {
				continue
			}
		}
		// A reused connection that fails before the first response byte
		// was most likely closed by the upstream just after its check:
		// the request may not have been seen, so an idempotent one is
		// sent once more on a fresh connection (as net/http does).
		var stale *staleConnError
		if !retried && c.reused && idempotent && errors.As(err, &stale) && ctx.Err() == nil {
			retried = true
			continue
		}
		if stale != nil {
			err = stale.err
		}
		return nil, err
	}
}

// getConn returns an idle connection to addr or dials one. Whether an idle
// one is still fit for use is checked at its first write (idleCheck).
func (t *leanTransport) getConn(ctx context.Context, addr string) (*leanConn, error) {
	for {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if t.idleTimeout > 0 && time.Since(c.idleAt) > t.idleTimeout {
			c.close()
			continue
		}
		c.reused = true
		return c, nil
	}
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newLeanConn(t, addr, conn), nil
}

// put returns a connection whose exchange finished cleanly to the pool.
func (t *leanTransport) put(c *leanConn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	list := t.idle[c.addr]
	if len(list) >= t.maxIdlePerHost {
		t.mu.Unlock()
		c.close()
		return
	}
	t.idle[c.addr] = append(list, c)
	if t.sweep == nil && t.idleTimeout > 0 {
		t.sweep = time.AfterFunc(t.idleTimeout, t.sweepIdle)
	}
	t.mu.Unlock()
}

// sweepIdle closes connections idle for longer than idleTimeout and runs
// again while any are left.
func (t *leanTransport) sweepIdle() {
	cutoff := time.Now().Add(-t.idleTimeout)
	var expired []*leanConn
	t.mu.Lock()
	left := 0
	for addr, list := range t.idle {
		i := 0
		for i < len(list) && list[i].idleAt.Before(cutoff) {
			i++
		}
		expired = append(expired, list[:i]...)
		if i == len(list) {
			delete(t.idle, addr)
			continue
		}
		t.idle[addr] = append(list[:0], list[i:]...)
		clear(list[len(list)-i:])
		left += len(list) - i
	}
	if left > 0 {
		t.sweep.Reset(t.idleTimeout / 2)
	} else {
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

// CloseIdleConnections closes the idle connections of both paths;
// connections in use go when their exchange ends.
func (t *leanTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*leanConn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.close()
		}
	}
	t.fallback.CloseIdleConnections()
}

// idleCount is the number of pooled connections (for tests).
func (t *leanTransport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, list := range t.idle {
		n += len(list)
	}
	return n
}

// informational passes a 1xx response to the ReverseProxy's trace hook,
// which relays it to the client (103 Early Hints), as http.Transport does.
func informational(ctx context.Context, resp *http.Response) error {
	if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
		return trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header))
	}
	return nil
}

// staleConnError is a failure before any response byte arrived.
type staleConnError struct{ err error }

func (e *staleConnError) Error() string { return e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }

var (
	errUnexpectedSwitch = errors.New("proxy: upstream switched protocols without an upgrade request")
	errHeaderTooLarge   = errors.New("proxy: upstream response headers too large")
	// errNotIdle and the errors wrapping it: a connection failed its check
	// before the request's first byte was written.
	errNotIdle       = errors.New("proxy: upstream connection not idle")
	errUnsolicited   = fmt.Errorf("%w: the upstream sent bytes before the request (an unsolicited response)", errNotIdle)
	errIdleClosed    = fmt.Errorf("%w: the upstream closed it", errNotIdle)
	errIdleUnchecked = fmt.Errorf("%w: its idle state cannot be checked", errNotIdle)
)

// idleState is what a peek finds on a connection between exchanges.
type idleState uint8

const (
	idleUnknown idleState = iota // cannot be checked
	idleClean                    // nothing arrived: fit for the next request
	idleClosed                   // EOF, a reset or an error
	idleSent                     // bytes are waiting: unsolicited
)

// hostPort adds HTTP's default port to a URL host without one.
func hostPort(host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil && port != "" {
		return host
	}
	if len(host) > 0 && host[0] == '[' && host[len(host)-1] == ']' {
		return host + ":80"
	}
	return net.JoinHostPort(host, "80")
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func headerTimeoutError(err error) error {
	return fmt.Errorf("proxy: timeout awaiting upstream response headers: %w", err)
}
