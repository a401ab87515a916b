// Package testenv starts the real components that ztproxy's tests run against —
// an OpenID Provider (npm oidc-provider), DynamoDB (npm dynalite) and Chromium —
// on free loopback ports, and stops them when the test ends.
//
// Project rule: under CI (CI=true) a missing component fails the test; locally it
// skips with a message that says what to install.
package testenv

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// ChromiumFlags are the command-line flags for headless Chromium in tests.
var ChromiumFlags = []string{
	"--headless",
	"--no-sandbox",
	"--disable-gpu",
	"--disable-dev-shm-usage",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--no-first-run",
	"--disable-quic",
}

// InCI reports whether the tests run under CI (environment variable CI=true).
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// RequireComponent stops the test when err reports that component name is
// unavailable: t.Fatal under CI, t.Skip otherwise. It does nothing when err is nil.
func RequireComponent(t testing.TB, name string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("testenv: required component %s is unavailable under CI: %v", name, err)
		return
	}
	t.Skipf("testenv: skipping, component %s is unavailable (run .ci/run once to install it; under CI=true this fails): %v", name, err)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another
// process may take it before the caller binds it; starters in this package retry
// on a new port when that happens.
//
// The port comes from below the kernel's ephemeral range (32768–60999 on
// Linux by default), which every outgoing connection and every bind to
// port 0 draws from: a port the kernel hands out there can be taken by the
// next connection any process makes before the caller binds it, which
// failed tests on a busy machine ("address already in use"). Below that
// range only explicit binds compete, and this process never hands out the
// same port twice.
func FreePort(t testing.TB) int {
	t.Helper()
	freePorts.Lock()
	defer freePorts.Unlock()
	if freePorts.given == nil {
		freePorts.given = map[int]bool{}
	}
	for range 200 {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		if freePorts.given[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		freePorts.given[port] = true
		return port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePort's range: below the Linux default ephemeral ports, above the
// well-known and most registered service ports in use on developer machines.
const freePortLow, freePortHigh = 20000, 32700

var freePorts struct {
	sync.Mutex
	given map[int]bool
}

var repoRoot struct {
	once sync.Once
	dir  string
	err  error
}

// RepoRoot returns the module root: the nearest directory at or above the test's
// working directory that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	repoRoot.once.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			repoRoot.err = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				repoRoot.dir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				repoRoot.err = errors.New("no go.mod at or above the working directory")
				return
			}
			dir = parent
		}
	})
	if repoRoot.err != nil {
		t.Fatalf("testenv: finding the module root: %v", repoRoot.err)
	}
	return repoRoot.dir
}

// ChromiumPath returns the path of the Chromium binary (Debian's /usr/bin/chromium,
// else chromium or chromium-browser on PATH). A missing browser fails the test
// under CI and skips it otherwise.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return "/usr/bin/chromium"
	}
	var firstErr error
	for _, name := range []string{"chromium", "chromium-browser"} {
		p, err := exec.LookPath(name)
		if err == nil {
			return p
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	RequireComponent(t, "chromium", firstErr)
	return ""
}
