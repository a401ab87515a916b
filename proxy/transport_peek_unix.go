//go:build unix

package proxy

import (
	"syscall"
)

// peerClosedOrSent reports whether the upstream closed this idle
// connection or sent something on it (an unsolicited response such as a
// 408): either way it must not carry the next request. It peeks without
// blocking, one recv(2).
func (c *leanConn) peerClosedOrSent() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	sc, ok := c.conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	bad := false
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		case err != nil, n >= 0:
			bad = true // an error, EOF (n == 0) or bytes waiting
		}
		return true
	})
	return bad || err != nil
}
