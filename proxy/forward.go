package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ztproxy/decide"
	"ztproxy/idheaders"
	"ztproxy/portal"
	"ztproxy/upstream"
)

// forwarder sends allowed requests to one route's upstream.
type forwarder struct {
	route     *decide.RouteConfig
	server    *Server
	transport upstream.Transport
	// pool is transport when the route has several upstreams.
	pool *upstream.Pool
	// poolClosed silences pool's events once the forwarder is closed.
	poolClosed *atomic.Bool
	proxy      *httputil.ReverseProxy
}

func newForwarder(s *Server, rc *decide.RouteConfig) (*forwarder, error) {
	f := &forwarder{route: rc, server: s}
	if err := f.newTransport(); err != nil {
		return nil, err
	}
	var rt http.RoundTripper = f.transport
	if s.opts.UpstreamTransport != nil {
		rt = s.opts.UpstreamTransport
	}
	if rc.AWS != nil && rc.AWS.SignService != "" {
		rt = newAWSSigningTransport(rt, rc.AWS, s.now)
	}
	// Tracing on: a client span per forwarded request (outermost, so it
	// covers SigV4 signing) and its traceparent to the upstream.
	rt = s.opts.Tracer.Transport(rt)
	f.proxy = &httputil.ReverseProxy{
		Rewrite:   f.rewrite,
		Transport: rt,
		// Default flushing: ReverseProxy flushes at once for event streams
		// and responses of unknown length (long polls), and batches the rest
		// (forcing a flush per write cost 18% of CPU under load).
		FlushInterval: 0,
		ErrorHandler:  f.upstreamError,
		BufferPool:    copyBuffers,
		// ReverseProxy's own messages (a body copy that failed) go to the
		// operational log, not to the standard logger.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if rc.ResponseHeaders != nil {
		f.proxy.ModifyResponse = f.modifyResponse
	}
	return f, nil
}

// close lets a replaced forwarder go: its health checks stop and its
// idle connections close; requests in flight finish on their own.
func (f *forwarder) close() {
	if f.pool != nil {
		f.poolClosed.Store(true)
		f.pool.Close()
		return
	}
	f.transport.CloseIdleConnections()
}

// serve forwards the request and returns the status sent to the client,
// and the error behind it when the request failed (the upstream's
// failures included, issue 22.4). A response that fails mid-body makes
// ReverseProxy panic with http.ErrAbortHandler; x.fwd, the exchange's
// Stream, then tells the audit guard why (issue 22.3).
func (f *forwarder) serve(w http.ResponseWriter, r *http.Request, x *exchange) (int, error) {
	x.Forwarded = true
	p := &x.RC.Principal
	if f.route.PassIdentityHeaders && p.Kind != "Anonymous" {
		tok, err := f.server.signer.Assertion(x.Engine.Issuer(), &x.RC, x.Engine.Config().AssertionTTL, x.RC.Time)
		if err != nil {
			// Without a verifiable assertion the upstream cannot trust
			// the identity headers: fail closed.
			f.server.log.Error("assertion signing failed", "route", f.route.Name, "err", err)
			return portal.WriteError(w, r, err, x.RC.RequestID), err
		}
		x.assertion = tok
	}
	if a := f.route.AWS; a != nil {
		creds, err := x.Engine.MintAWS(r.Context(), &x.Exchange, a.Role)
		if err != nil {
			return portal.WriteError(w, r, err, x.RC.RequestID), err
		}
		x.awsCreds = &creds
	}
	if f.route.StripPrefix && f.route.PathPrefix != "/" {
		// By segments, not bytes: the forward path may carry
		// ";parameters" on the prefix's segments.
		x.ForwardPath = decide.StripPathSegments(x.ForwardPath, strings.Count(strings.TrimSuffix(f.route.PathPrefix, "/"), "/"))
		x.UpstreamPath = joinURLPath(f.route.Upstream.Path, x.ForwardPath)
	}
	if err := f.prepareRouteOptions(r, x); err != nil {
		return portal.WriteError(w, r, err, x.RC.RequestID), err
	}
	if r.Body != nil && r.Body != http.NoBody {
		if n := f.bodyLimit(x); n > 0 {
			if r.ContentLength > n {
				err := errBodyTooLarge(nil)
				return portal.WriteError(w, r, err, x.RC.RequestID), err
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		x.body = &requestBody{ReadCloser: r.Body}
		r.Body = x.body
	}
	ctx := context.WithValue(r.Context(), exchangeKey{}, x)
	if f.route.LBPolicy == upstream.HashUser {
		ctx = upstream.WithHashKey(ctx, decide.PrincipalKey(&x.Exchange))
	}
	var cancel context.CancelFunc
	if !f.streams(r) {
		ctx, cancel = context.WithTimeout(ctx, f.route.Timeout)
		defer cancel()
	}
	x.fwd = forwarding{client: r.Context(), ctx: ctx, rec: statusRecorder{ResponseWriter: w}}
	x.Stream = &x.fwd
	defer f.observeUpstream(time.Now())
	f.proxy.ServeHTTP(&x.fwd.rec, r.WithContext(ctx))
	if err := x.fwd.err; err != nil {
		status, _ := decide.StatusOf(err)
		return status, err
	}
	if x.fwd.rec.status == 0 {
		return http.StatusOK, nil
	}
	return x.fwd.rec.status, nil
}

// observeUpstream records the forwarding time, also of an aborted
// response.
func (f *forwarder) observeUpstream(start time.Time) {
	f.server.metrics.UpstreamSeconds.WithLabelValues(f.route.Name).Observe(time.Since(start).Seconds())
}

// rewrite builds the outbound request. Hop-by-hop headers (including any
// named in Connection) and X-Forwarded-{For,Host,Proto} were already
// removed by ReverseProxy; everything the proxy adds is set here, after
// that removal, so a client cannot make it disappear.
func (f *forwarder) rewrite(pr *httputil.ProxyRequest) {
	x := exchangeFrom(pr.In.Context())
	out := pr.Out
	up := f.route.Upstream
	out.URL.Scheme = upstream.RequestScheme(up)
	out.URL.Host = up.Host
	out.URL.Path = joinURLPath(up.Path, x.ForwardPath)
	out.URL.RawPath = ""
	if f.route.HostRewrite != "" {
		out.Host = f.route.HostRewrite
	} else if !f.route.PreserveHost {
		out.Host = ""
	}
	h := out.Header
	idheaders.Sanitize(h, x.TrustedPeer)
	if x.ConsumedAuth {
		h.Del("Authorization")
	}
	if name := x.Engine.Config().SessionCookieName; name != "" {
		idheaders.RemoveCookie(h, name, name+"_csrf")
	}
	// One backing array for every value the proxy sets: a value slice per
	// header would cost an allocation per header per request.
	hs := headerSetter{h: h, vals: make([]string, 0, 9)}
	if prior := pr.In.Header["X-Forwarded-For"]; x.TrustedPeer && len(prior) > 0 {
		hs.set("X-Forwarded-For", strings.Join(prior, ", ")+", "+decide.ParseAddr(pr.In.RemoteAddr).String())
	} else {
		hs.set("X-Forwarded-For", x.ClientIP())
	}
	hs.set("X-Forwarded-Host", pr.In.Host)
	if pr.In.TLS != nil {
		hs.set("X-Forwarded-Proto", "https")
	} else {
		hs.set("X-Forwarded-Proto", "http")
	}
	hs.set(idheaders.RequestID, x.RC.RequestID)
	if f.route.PassIdentityHeaders && x.assertion != "" {
		p := &x.RC.Principal
		hs.set(idheaders.User, idheaders.SafeValue(p.ID))
		if p.Email != "" {
			hs.set(idheaders.Email, idheaders.SafeValue(p.Email))
		}
		if len(p.Groups) > 0 {
			hs.set(idheaders.Groups, idheaders.SafeValue(strings.Join(p.Groups, ",")))
		}
		if x.RC.Device.Present {
			hs.set(idheaders.Device, idheaders.SafeValue(x.RC.Device.ID))
		}
		hs.set(idheaders.Assertion, x.assertion)
	}
	if rh := f.route.RequestHeaders; rh != nil {
		// After Sanitize and the proxy's own headers; the rules can name
		// no X-Ztp-* or X-Forwarded-* header (idheaders.NameProblem).
		rh.Remove(h)
		for name, v := range x.routeHeaders {
			h[name] = v
		}
	}
}

// headerSetter sets single-valued headers that share one backing array.
type headerSetter struct {
	h    http.Header
	vals []string
}

func (hs *headerSetter) set(name, v string) {
	hs.vals = append(hs.vals, v)
	n := len(hs.vals)
	hs.h[name] = hs.vals[n-1 : n : n]
}

// copyBuffers recycles the 32 KiB buffers ReverseProxy copies bodies
// with; without it every request allocates one.
var copyBuffers = &bufferPool{}

type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32*1024)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }

// joinURLPath joins the upstream's base path and the request path.
func joinURLPath(base, p string) string {
	if base == "" || base == "/" {
		return p
	}
	return strings.TrimSuffix(base, "/") + p
}

// upstreamError maps transport failures: timeouts → 504, the rest → 502.
// The mapped error is kept for the audit line and the metric.
func (f *forwarder) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	id := ""
	if x != nil {
		id = x.RC.RequestID
		defer func() { x.fwd.err = err }()
	}
	var mbe *http.MaxBytesError
	var refused *decide.Error
	var bodyErr error
	if x != nil && x.body != nil {
		bodyErr = x.body.readErr()
	}
	switch {
	case errors.As(err, &refused):
		// A refusal before anything was sent (the AWS signer's body limits).
		err = refused
	case errors.As(err, &mbe) || errors.As(bodyErr, &mbe):
		err = errBodyTooLarge(err)
	case errors.Is(err, idheaders.ErrHostileValue):
		err = errResponseHeaderRefused(err)
	case bodyErr != nil && r.Context().Err() == nil:
		// The client's body, not the upstream, failed: a malformed chunked
		// coding or a body cut short.
		err = &decide.Error{Status: http.StatusBadRequest, Code: "bad_request_body", Msg: "the request body is malformed or incomplete", Err: bodyErr}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		err = &decide.Error{Status: 499, Code: "client_closed", Msg: "client closed request", Err: err}
	case errors.Is(err, upstream.ErrNoHealthyUpstream):
		err = &decide.Error{Status: http.StatusServiceUnavailable, Code: "no_healthy_upstream", Msg: "no upstream of this route is healthy", Err: err}
	case errors.Is(err, context.DeadlineExceeded) || upstream.IsTimeout(err):
		err = &decide.Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout", Msg: "the upstream did not answer in time", Err: err}
	default:
		err = &decide.Error{Status: http.StatusBadGateway, Code: "upstream_unavailable", Msg: "the upstream is unavailable", Err: err}
	}
	f.server.log.Warn("upstream error", "route", f.route.Name, "request_id", id, "err", err)
	portal.WriteError(w, r, err, id)
}

// requestBody remembers why reading the client's body failed, so that a
// forwarding error the client caused is answered 400, not 502. The
// transport reads the body on its own goroutine, hence the lock.
type requestBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *requestBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// statusRecorder remembers the status code written through it, and the
// first write error (the client went away).
type statusRecorder struct {
	http.ResponseWriter
	status   int
	writeErr error
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	if err != nil && s.writeErr == nil {
		s.writeErr = err
	}
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
