// Package idheaders owns what an upstream learns about the caller from
// ztproxy: the X-Ztp-* identity headers, the signed X-Ztp-Assertion JWT
// and its published key set (Signer), and the sanitiser that removes
// every client-sent copy of a header the proxy owns, in any spelling
// (Sanitize), along with the session cookie (RemoveCookie).
//
// Every front door that lets a request through uses it: the reverse
// proxy on the forwarded request, forward-auth and ext_authz in their
// answers to the front proxy. It knows nothing of routes or decisions
// and imports only identity.
package idheaders
