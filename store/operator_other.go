//go:build !unix

package store

import (
	"errors"
	"net"
)

// listenPrivateUnix is not offered where a socket file's permissions do
// not keep other users out: stop ztproxy to run operator commands there.
func listenPrivateUnix(string) (net.Listener, error) {
	return nil, errors.New("not supported on this system")
}

func peerIsSameUser(net.Conn) bool { return false }
