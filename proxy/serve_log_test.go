package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestHandshakeErrorLogging: issue 15.13, a browser closing a speculative
// connection logged "TLS handshake error … EOF" as a warning, and
// net/http's error log adapter wrote a JSON line with two "msg" keys.
func TestHandshakeErrorLogging(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	for _, tc := range []struct {
		err   error
		level string
	}{
		{io.EOF, "DEBUG"},
		{fmt.Errorf("tls: first record: %w", io.ErrUnexpectedEOF), "DEBUG"},
		{reset, "DEBUG"},
		{tls.AlertError(42), "WARN"},
		{errors.New("tls: client offered only unsupported versions: [301]"), "WARN"},
	} {
		buf.Reset()
		s.logHandshakeError(remote, tc.err)
		line := buf.String()
		if !strings.Contains(line, `"level":"`+tc.level+`"`) || strings.Count(line, `"msg":`) != 1 {
			t.Errorf("%v: logged %s", tc.err, line)
		}
	}
	buf.Reset()
	w := slogWriter{s.log}
	fmt.Fprintf(w, "http: superfluous response.WriteHeader call\n")
	if line := buf.String(); strings.Count(line, `"msg":`) != 1 || !strings.Contains(line, `"error":"http: superfluous response.WriteHeader call"`) {
		t.Errorf("net/http error log line: %s", line)
	}
}
