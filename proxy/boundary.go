package proxy

import (
	"net/http"

	"ztproxy/decide"
	"ztproxy/portal"
)

// errUpgradeFraming refuses an upgrade whose framing forces the
// connection closed: an HTTP/1.0 request (which may not upgrade, RFC 9110
// §7.8) or one with a chunked body.
var errUpgradeFraming = &decide.Error{Status: http.StatusBadRequest, Code: "bad_upgrade",
	Msg: "an upgrade must be an HTTP/1.1 request without a chunked body"}

// errConflictingFraming refuses a request that had both Content-Length and
// Transfer-Encoding (RFC 9112 §6.1), as nginx does.
var errConflictingFraming = &decide.Error{Status: http.StatusBadRequest, Code: "conflicting_framing",
	Msg: "a request must not have both Content-Length and Transfer-Encoding"}

// boundary wraps the handler of every listener (the public one, which
// serves proxied requests, forward-auth and sidecar mode, and the admin
// one) with the HTTP/1 framing rules net/http leaves to handlers.
//
// Issue 12.5, RFC 9112 §6.1: a server may reject a request that has both
// Content-Length and Transfer-Encoding or process it by its
// Transfer-Encoding, and either way MUST close the connection after
// responding — the pair is how a request is smuggled past a front end
// that reads the other header. net/http (Go 1.26) processes such a request
// by its chunked coding, deletes Content-Length before any handler runs
// and keeps the connection (golang/go#80942). On the public listener the
// listener package watches the raw request heads, and serveHTTP refuses
// the pair with 400 (errConflictingFraming). Whatever the watch can tell,
// every HTTP/1.x request with a chunked body is answered with
// Connection: close, so nothing after it on the connection is ever
// read. An HTTP/1.0 request with
// Transfer-Encoding has faulty framing too (§6.1) and net/http deletes
// that header as well, so HTTP/1.0 connections are never kept alive.
// HTTP/2 frames bodies itself and is not affected.
func boundary(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && (r.ProtoMinor == 0 || len(r.TransferEncoding) > 0) {
			w.Header().Set("Connection", "close")
			if decide.IsUpgrade(r) {
				portal.WriteError(w, r, errUpgradeFraming, "")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
