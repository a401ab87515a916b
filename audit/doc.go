// Package audit owns the audit log: the record of one finished request
// (Record, one "decision" line per request), the slog handler that
// encodes it byte for byte as slog's JSON handler would without
// reflection (NewHandler), and the batching writer in front of the
// destination (Writer).
//
// It knows nothing of HTTP or of how a request was decided: the decision
// engine fills a Record. It imports only identity.
package audit
