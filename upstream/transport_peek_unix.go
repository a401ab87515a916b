//go:build unix

package upstream

import (
	"syscall"
)

// peeker is a connection's reusable recv(MSG_PEEK) callback for
// syscall.RawConn.Read; built once per connection so that the check on
// every reuse allocates nothing.
type peeker struct {
	fn    func(fd uintptr) bool
	state idleState
}

// initPeek makes the connection checkable when it is a syscall.Conn.
func (c *leanConn) initPeek() {
	sc, ok := c.conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.raw = raw
	p := &c.peek
	p.fn = func(fd uintptr) bool {
		var b [1]byte
		for {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
				p.state = idleClean
			case err != nil || n == 0:
				p.state = idleClosed // a reset, an error or EOF
			default:
				p.state = idleSent
			}
			return true // never wait for readiness
		}
	}
}

// peekIdle reports whether the upstream closed this connection or sent
// something on it, without blocking and without consuming a byte: one
// recv(2) with MSG_PEEK|MSG_DONTWAIT.
func (c *leanConn) peekIdle() idleState {
	if c.raw == nil {
		return idleUnknown
	}
	c.peek.state = idleUnknown
	if err := c.raw.Read(c.peek.fn); err != nil {
		return idleClosed // the descriptor is closed or unusable
	}
	return c.peek.state
}
