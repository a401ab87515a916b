package proxy

import (
	"errors"
	"net/http"

	"ztproxy/decide"
	"ztproxy/portal"
)

// errHeaderRefused refuses a request whose identity renders an unsafe
// value into one of the route's request_headers (a CR/LF or non-ASCII
// byte in a claim): forwarding without the header could let the
// application treat the caller as someone else, or as no one.
var errHeaderRefused = &decide.Error{Status: http.StatusForbidden, Code: "header_value_refused",
	Msg: "your identity has a value this route cannot pass to its application (a control or non-ASCII character)"}

// errBodyTooLarge is the 413 of a body over the route's (or server's)
// limit.
func errBodyTooLarge(cause error) error {
	return &decide.Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Msg: "request body too large", Err: cause}
}

// errResponseHeaderRefused replaces a response whose response_headers
// template rendered an unsafe value.
func errResponseHeaderRefused(cause error) error {
	return &decide.Error{Status: http.StatusBadGateway, Code: "header_value_refused",
		Msg: "the response could not be passed on safely", Err: cause}
}

// prepareRouteOptions applies the options that can refuse a request
// before it is forwarded: the path rewrite and the request header
// templates. Routes without them pay two nil checks.
func (f *forwarder) prepareRouteOptions(r *http.Request, x *exchange) error {
	rc := f.route
	if rc.Rewrite != nil {
		p, err := rc.Rewrite.Rewrite(x.ForwardPath, rc.PathPrefix)
		if err != nil {
			return err
		}
		x.ForwardPath = p
		x.UpstreamPath = joinURLPath(rc.Upstream.Path, p)
	}
	if rc.RequestHeaders != nil {
		x.routeHeaders = http.Header{}
		if err := rc.RequestHeaders.Render(x.routeHeaders, &x.RC, r.TLS != nil); err != nil {
			f.server.log.Warn("request header template refused", "route", rc.Name, "request_id", x.RC.RequestID, "err", err)
			return errors.Join(errHeaderRefused, err)
		}
	}
	return nil
}

// streams reports whether r is a long-lived exchange the route timeout
// must not cut: an allowed WebSocket upgrade, or a call on a grpc route.
func (f *forwarder) streams(r *http.Request) bool {
	return (f.route.WebSocket && decide.IsUpgrade(r)) || (f.route.GRPC && portal.IsGRPC(r))
}

// bodyLimit is the route's body limit, else the server's; 0 is none.
func (f *forwarder) bodyLimit(x *exchange) int64 {
	if n := f.route.MaxBodyBytes; n > 0 {
		return n
	}
	return x.Engine.Config().MaxBodyBytes
}

// modifyResponse applies the route's response_headers; only routes with
// them install it.
func (f *forwarder) modifyResponse(resp *http.Response) error {
	x := exchangeFrom(resp.Request.Context())
	if x == nil {
		return nil
	}
	return f.route.ResponseHeaders.Apply(resp.Header, &x.RC, x.Scheme == "https")
}
