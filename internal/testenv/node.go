package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds how long a component may take to print its READY line.
const readyTimeout = 30 * time.Second

// nodePackageDir returns internal/testenv/<name> (a node package) after making
// sure its dependencies are installed. Missing node or npm skips or fails the test
// through RequireComponent.
func nodePackageDir(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "internal", "testenv", name)
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err != nil {
		t.Fatalf("testenv: node package %s: %v", name, err)
	}
	_, err := exec.LookPath("node")
	RequireComponent(t, "node", err)
	if err := ensureNodeDeps(dir); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			RequireComponent(t, "npm", err)
		}
		t.Fatalf("testenv: installing node dependencies in %s: %v", dir, err)
	}
	return dir
}

// nodeDepsCurrent reports whether dir/node_modules was installed from the current
// package-lock.json. npm writes node_modules/.package-lock.json on every install.
func nodeDepsCurrent(dir string) bool {
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil {
		return false
	}
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	return err == nil && !lock.ModTime().After(installed.ModTime())
}

// ensureNodeDeps runs `npm ci` in dir when node_modules is missing or older than
// the lock file. A file lock keeps test binaries of parallel packages from
// installing into the same directory at once.
func ensureNodeDeps(dir string) error {
	if nodeDepsCurrent(dir) {
		return nil
	}
	sum := sha256.Sum256([]byte(dir))
	unlock, err := lockFile(filepath.Join(os.TempDir(), "ztproxy-npm-"+hex.EncodeToString(sum[:8])+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if nodeDepsCurrent(dir) { // another process installed while we waited
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci: %w\n%s", err, out)
	}
	return nil
}

// nodeProcess is one run of a node program that prints "READY <url>" when it
// listens.
type nodeProcess struct {
	name string
	cmd  *exec.Cmd
	log  *tailBuffer
	done chan struct{} // closed when the process has exited
}

// startNode runs `node script` in dir with env added to the environment and waits
// for its READY line, returning the text after "READY ".
func startNode(name, dir, script string, args, env []string) (*nodeProcess, string, error) {
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childProcAttr()
	logBuf := newTailBuffer(64 << 10)
	cmd.Stderr = logBuf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	p := &nodeProcess{name: name, cmd: cmd, log: logBuf, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "READY "); ok {
				select {
				case ready <- strings.TrimSpace(rest):
				default:
				}
				continue
			}
			fmt.Fprintln(logBuf, line)
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case url := <-ready:
		return p, url, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before it was ready (%v):\n%s", name, cmd.ProcessState, logBuf.String())
	case <-time.After(readyTimeout):
		p.stop()
		return nil, "", fmt.Errorf("%s was not ready within %v:\n%s", name, readyTimeout, logBuf.String())
	}
}

// addrInUse reports whether a failed start lost a race for its port.
func addrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "EADDRINUSE")
}

// stop sends SIGTERM, waits up to 5 s for a clean exit and then kills.
func (p *nodeProcess) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitDial waits until addr accepts TCP connections.
func waitDial(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tailBuffer keeps the last max bytes written to it, for failure messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
