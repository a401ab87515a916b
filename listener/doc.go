// Package listener owns the public listener's connections below HTTP: it
// completes TLS handshakes before a connection reaches net/http, and it
// watches the HTTP/1 request heads each connection carries for framing
// that net/http accepts but hides from handlers (Content-Length together
// with Transfer-Encoding, RFC 9112 §6.1), so that the front door can
// refuse such a request instead of only closing the connection after it.
//
// It imports only the standard library. It must not import any ztproxy
// package: it knows nothing of routes, identities or policy.
package listener
