package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// HostileUpstream is an HTTP/1.1 upstream that misbehaves on purpose: a real
// TCP server on a loopback port whose every connection follows a script of
// reads, writes, pauses and closes, byte for byte.
//
// No real server exists for this. The behaviours it plays — a second,
// unsolicited response 30 ms after the first one on a keep-alive
// connection, a response written before the request was read, conflicting
// Content-Length headers, malformed chunk sizes, a flood of 1xx responses,
// a body on a 204 or on a HEAD response, a header block of megabytes — are
// bugs or attacks (a compromised or broken application server, a
// desynchronised intermediary). Real servers produce them, but not on
// demand, not on a fixed schedule and not on a chosen connection, which is
// what a regression test needs. The server speaks HTTP by hand so that it
// can send bytes no well-behaved library would let it send.
type HostileUpstream struct {
	// URL is http://127.0.0.1:<port>; Addr is its host:port.
	URL, Addr string

	scripts [][]Step
	l       net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   int
	targets []string // request targets read, in order, all connections
	marks   map[string]chan struct{}
	done    chan struct{} // closed when the test ends: cuts Sleep short
}

// Step is one action of a connection's script.
type Step struct {
	kind stepKind
	text string
	d    time.Duration
}

type stepKind uint8

const (
	stepRead stepKind = iota
	stepReadLine
	stepReadRest
	stepReadWithin
	stepWrite
	stepRespond
	stepSleep
	stepMark
	stepCloseWrite
	stepReset
	stepKeepAlive
	stepDrain
)

// maxRequestHead bounds a request head the server reads.
const maxRequestHead = 64 << 10

// ReadRequest reads one request head, up to its empty line (CRLF or bare
// LF). Its target (the path) replaces "{{path}}" in later writes. Body-less
// requests only: nothing after the head is read. At EOF the script ends.
func ReadRequest() Step { return Step{kind: stepRead} }

// ReadRequestLine reads only the request line, so the next step can answer
// before the rest of the request has arrived. The rest of the head stays
// unread until ReadRestOfHead or Drain.
func ReadRequestLine() Step { return Step{kind: stepReadLine} }

// ReadRestOfHead reads the rest of a head whose line ReadRequestLine read.
func ReadRestOfHead() Step { return Step{kind: stepReadRest} }

// ReadRequestWithin is ReadRequest, but the script ends (the connection is
// closed) when no request arrives within d.
func ReadRequestWithin(d time.Duration) Step { return Step{kind: stepReadWithin, d: d} }

// Write writes raw bytes, with "{{path}}" replaced by the last request's
// target ("-" before any request).
func Write(raw string) Step { return Step{kind: stepWrite, text: raw} }

// Respond writes a well-formed 200 response with body (after the "{{path}}"
// replacement) and its exact Content-Length.
func Respond(body string) Step { return Step{kind: stepRespond, text: body} }

// Sleep pauses the script.
func Sleep(d time.Duration) Step { return Step{kind: stepSleep, d: d} }

// Mark signals name to WaitMark once the script reaches it.
func Mark(name string) Step { return Step{kind: stepMark, text: name} }

// CloseWrite half-closes the connection (FIN) and keeps reading.
func CloseWrite() Step { return Step{kind: stepCloseWrite} }

// Reset closes the connection with a TCP RST instead of a FIN.
func Reset() Step { return Step{kind: stepReset} }

// KeepAlive answers every further request on the connection as Respond
// does, until the client closes it.
func KeepAlive(body string) Step { return Step{kind: stepKeepAlive, text: body} }

// Drain reads and discards until the client closes the connection.
func Drain() Step { return Step{kind: stepDrain} }

// StartHostileUpstream serves connection i (counting from 0, in accept
// order) with scripts[i], and every later connection with the last script.
// A connection is closed when its script ends. Everything stops when the
// test ends.
func StartHostileUpstream(t testing.TB, scripts ...[]Step) *HostileUpstream {
	t.Helper()
	if len(scripts) == 0 {
		t.Fatal("testenv: StartHostileUpstream needs at least one script")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: hostile upstream: %v", err)
	}
	u := &HostileUpstream{Addr: l.Addr().String(), scripts: scripts, l: l, marks: map[string]chan struct{}{}, done: make(chan struct{})}
	u.URL = "http://" + u.Addr
	u.wg.Add(1)
	go u.accept()
	t.Cleanup(func() {
		close(u.done)
		l.Close()
		u.wg.Wait()
	})
	return u
}

func (u *HostileUpstream) accept() {
	defer u.wg.Done()
	var open []net.Conn
	var mu sync.Mutex
	defer func() {
		// Unblock scripts waiting on a client that never closes.
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		conn, err := u.l.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		open = append(open, conn)
		mu.Unlock()
		u.mu.Lock()
		script := u.scripts[min(u.conns, len(u.scripts)-1)]
		u.conns++
		u.mu.Unlock()
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			defer conn.Close()
			u.run(conn, script)
		}()
	}
}

// Conns is the number of connections accepted so far.
func (u *HostileUpstream) Conns() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// Targets returns the request targets read so far, over all connections.
func (u *HostileUpstream) Targets() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.targets...)
}

// WaitMark waits until a script reaches Mark(name), or fails the test.
func (u *HostileUpstream) WaitMark(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	select {
	case <-u.mark(name):
	case <-time.After(timeout):
		t.Fatalf("testenv: hostile upstream: mark %q not reached within %v", name, timeout)
	}
}

func (u *HostileUpstream) mark(name string) chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	ch, ok := u.marks[name]
	if !ok {
		ch = make(chan struct{})
		u.marks[name] = ch
	}
	return ch
}

// run plays one connection's script; it returns when the script ends or
// the client goes away.
func (u *HostileUpstream) run(conn net.Conn, script []Step) {
	br := bufio.NewReader(conn)
	path := "-"
	for _, s := range script {
		var err error
		switch s.kind {
		case stepRead, stepReadWithin:
			if s.kind == stepReadWithin {
				conn.SetReadDeadline(time.Now().Add(s.d))
			}
			path, err = u.readHead(br, path, true)
			conn.SetReadDeadline(time.Time{})
		case stepReadLine:
			path, err = u.readHead(br, path, false)
		case stepReadRest:
			err = readRest(br)
		case stepWrite:
			_, err = conn.Write([]byte(strings.ReplaceAll(s.text, "{{path}}", path)))
		case stepRespond:
			_, err = conn.Write(respond(s.text, path))
		case stepSleep:
			select {
			case <-time.After(s.d):
			case <-u.done:
				return
			}
		case stepMark:
			ch := u.mark(s.text)
			u.mu.Lock()
			select {
			case <-ch:
			default:
				close(ch)
			}
			u.mu.Unlock()
		case stepCloseWrite:
			if tc, ok := conn.(*net.TCPConn); ok {
				err = tc.CloseWrite()
			}
		case stepReset:
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			return
		case stepKeepAlive:
			for err == nil {
				if path, err = u.readHead(br, path, true); err == nil {
					_, err = conn.Write(respond(s.text, path))
				}
			}
		case stepDrain:
			_, err = br.WriteTo(discard{})
		}
		if err != nil {
			return
		}
	}
}

// headReader reads the lines of request heads, bounded in size.
type headReader struct {
	br   *bufio.Reader
	read int
}

func (h *headReader) line() (string, error) {
	l, err := h.br.ReadSlice('\n')
	h.read += len(l)
	if err == nil && h.read > maxRequestHead {
		err = errors.New("request head too large")
	}
	return string(l), err
}

// readHead reads a request line and, when whole is set, the rest of the
// head. It returns the request target.
func (u *HostileUpstream) readHead(br *bufio.Reader, path string, whole bool) (string, error) {
	h := &headReader{br: br}
	first, err := h.line()
	for err == nil && strings.TrimSpace(first) == "" { // tolerate a stray CRLF between requests
		first, err = h.line()
	}
	if err != nil {
		return path, err
	}
	if f := strings.Fields(first); len(f) >= 2 {
		path = f[1]
	}
	u.mu.Lock()
	u.targets = append(u.targets, path)
	u.mu.Unlock()
	if !whole {
		return path, nil
	}
	return path, h.rest()
}

// readRest reads header lines up to the empty line ending a head.
func readRest(br *bufio.Reader) error { return (&headReader{br: br}).rest() }

func (h *headReader) rest() error {
	for {
		l, err := h.line()
		if err != nil {
			return err
		}
		if l == "\r\n" || l == "\n" {
			return nil
		}
	}
}

// respond is a well-formed 200 response with body.
func respond(body, path string) []byte {
	body = strings.ReplaceAll(body, "{{path}}", path)
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteString("\r\n\r\n")
	b.WriteString(body)
	return b.Bytes()
}

// HostileResponse is a well-formed response with status and body, for
// scripts that write raw bytes (a stray response, say).
func HostileResponse(status int, body string) string {
	return fmt.Sprintf("HTTP/1.1 %d Hostile\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
