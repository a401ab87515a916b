// Package signals is ztproxy's Shared Signals receiver: Security Event
// Tokens (SETs, RFC 8417) pushed over HTTP (RFC 8935) by configured
// transmitters (an IdP or a security tool speaking the OpenID Shared
// Signals Framework with CAEP and RISC events).
//
// A SET is verified (typ secevent+jwt, a configured transmitter's issuer,
// its JWKS, the configured audience, iat, a jti not seen before on any
// replica), its subject resolved (RFC 9493 formats iss_sub, email, opaque,
// and CAEP's complex user/device/session subjects), and each event acted
// on: sessions revoked, a user flag set or cleared, a device marked
// non-compliant, a step-up required at the next request. Unknown events
// are acknowledged and logged. Refusals carry RFC 8935's error codes.
//
// It writes no HTTP: the portal serves the endpoint. It imports authn for
// the key sets and the session revoker, and store for flags.
package signals
