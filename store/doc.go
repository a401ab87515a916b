// Package store is the shared state of ztproxy replicas: browser sessions
// (with revocation), behavioural profiles, operator flags, WebAuthn
// credentials and the device inventory.
//
// Two implementations satisfy Store: Bolt, a single bbolt file for one
// replica (the default), and Dynamo, DynamoDB tables shared by any number of
// replicas. Consumers declare the few methods they need as their own small
// interfaces. While a proxy holds the embedded file locked, it shares it with
// the operator's commands (ztproxy risk, ztproxy keys) on a Unix socket next
// to the file (ServeOperator, DialOperator; see operator.go).
//
// DynamoDB design in brief (details next to each implementation):
//   - <prefix>sessions, key id: one item per session; revocation is an
//     attribute, kept until the session's own expiry (numeric ttl attribute,
//     epoch seconds) so every replica sees it.
//   - <prefix>profiles, key user_id: counters and hour buckets are separate
//     numeric attributes updated with ADD; every network, user agent and
//     device is its own attribute (net:…, ua:…, dev:…) set with SET, so one
//     UpdateItem merges an observation and concurrent replicas lose nothing.
//   - <prefix>flags, key user_id, optional ttl.
//   - <prefix>credentials, key user_id + credential_id; the sign counter is
//     updated with a condition, so a cloned authenticator cannot win a race.
//   - <prefix>devices, key device_id, global secondary index owner-index on
//     owner; the device package's document is one attribute, and every
//     update is a PutItem conditioned on the version read, so concurrent
//     replicas cannot lose a write.
//
// Expired items are filtered on every read, because DynamoDB TTL deletes
// lazily (and local emulators not at all). Nothing depends on
// TransactWriteItems or UpdateTimeToLive.
//
// Refresh tokens are sealed with the configured Sealer; without one they are
// stored as plaintext, which MUST NOT be done in production. Nothing in this
// package logs.
package store
