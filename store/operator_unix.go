//go:build unix

package store

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// listenPrivateUnix listens on a Unix socket at path that only this user
// can connect to: the socket is made in a fresh 0700 directory beside path,
// set to 0600 and then renamed into place. A socket left at path by a
// process that died is replaced (the caller holds the store's lock, so no
// live process serves it).
func listenPrivateUnix(path string) (net.Listener, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".ztproxy-sock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	staging := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", staging)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(staging, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() != os.ModeSocket {
		ln.Close()
		return nil, fmt.Errorf("%s exists and is not a socket", path)
	}
	if err := os.Rename(staging, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
