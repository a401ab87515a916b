//go:build !unix

package upstream

// peeker is empty where recv(MSG_PEEK) is not available.
type peeker struct{}

// initPeek leaves the connection uncheckable on this platform, so it is
// never reused: without a peek a stray response could not be told from
// the next exchange's.
func (c *leanConn) initPeek() {}

func (c *leanConn) peekIdle() idleState { return idleUnknown }
