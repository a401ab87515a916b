package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// nginxRaw sends a request line and headers to nginx exactly as written
// and returns the status.
func nginxRaw(t *testing.T, base, request string) int {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, strings.ReplaceAll(request, "{host}", addr)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestNginxForwardAuthBoundary runs issue 12's path-parameter and method
// examples through the shipped nginx example: what the app behind nginx
// receives must be what ztproxy decided about.
func TestNginxForwardAuthBoundary(t *testing.T) {
	e := newNginxEnv(t)
	bob := e.op.CodeFlowTokens(t, e.op.Client(t, "ztproxy"), e.op.User(t, "bob"), "", false) // eng: api yes, admin no

	// Issue 12.2: nginx passes "..;" through untouched (it is not a dot
	// segment to nginx), and a servlet app reads /api/..;/admin/panel as
	// /admin/panel. ztproxy refuses the original request, so nginx's
	// auth_request fails closed (500) and the app is not reached.
	for _, p := range []string{"/api/..;/admin/panel", "/api/%2e%2e;/admin/panel", "/api/..%3B/admin/panel", "/admin;x/panel"} {
		n := e.seenCount()
		status := nginxRaw(t, e.base, "GET "+p+" HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "+bob.IDToken+"\r\nConnection: close\r\n\r\n")
		if status == 200 || e.seenCount() != n {
			t.Errorf("%s: %d, app reached: %v", p, status, e.seenCount() != n)
		}
	}
	// Issue 12.4: a lower-case method never reaches the decision or the
	// app: nginx itself refuses it, and ztproxy would too (400 from
	// /.ztp/verify, see TestE2EBoundaryAttacks).
	n := e.seenCount()
	if status := nginxRaw(t, e.base, "delete /api/items HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "+bob.IDToken+"\r\nConnection: close\r\n\r\n"); status != 400 || e.seenCount() != n {
		t.Errorf("lower-case method through nginx: %d, app reached: %v", status, e.seenCount() != n)
	}
	if status := nginxRaw(t, e.base, "GET /api/items HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "+bob.IDToken+"\r\nConnection: close\r\n\r\n"); status != 200 {
		t.Errorf("control request: %d", status)
	}
}
