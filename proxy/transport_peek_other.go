//go:build !unix

package proxy

// peerClosedOrSent cannot peek on this platform; a stale connection is
// then found by the request itself (and retried when idempotent).
func (c *leanConn) peerClosedOrSent() bool { return c.br.Buffered() > 0 }
