// Package cae is continuous access evaluation: it keeps every replica's
// view of "who must be refused now" current between sign-ins.
//
// An Evaluator holds the set of principals (users and services) flagged
// compromised, loaded from the store at start and re-read every few
// minutes, and polls the store's change feed (one read per poll interval
// per replica, whatever the traffic) to apply what another replica, the
// CLI, the admin API, a back-channel logout or a security event changed:
// revoked sessions go into the revocation cache, flag changes into the
// compromised set and the risk engine, device changes into the device
// cache. The hot path (Compromised) is a map lookup: requests of users
// without events cost no store read at all.
//
// It imports only store and identity; the decision engine sees it through
// its own one-method interface, and cmd/ztproxy wires the callbacks.
package cae
