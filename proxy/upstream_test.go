package proxy

import (
	"bufio"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ztproxy/decide"
)

// TestUpstreamTLSWithCustomCA forwards to an https upstream whose
// certificate only the route's CA pool trusts.
func TestUpstreamTLSWithCustomCA(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls upstream "+r.Header.Get("X-Ztp-Email"))
	}))
	defer up.Close()
	tp := newTestProxy(t)
	cfg := tp.cfg
	cfg.Routes = append([]decide.RouteConfig(nil), cfg.Routes...)
	pool := x509.NewCertPool()
	pool.AddCert(up.Certificate())
	secure := decide.RouteConfig{Name: "secure", Host: "app.example.com", PathPrefix: "/secure", Upstream: mustURL(t, up.URL), UpstreamCAs: pool, Auth: decide.AuthBearer, PassIdentityHeaders: true}
	untrusted := secure
	untrusted.Name, untrusted.PathPrefix, untrusted.UpstreamCAs = "untrusted", "/untrusted", nil
	cfg.Routes = append(cfg.Routes, secure, untrusted)
	cfg.Authorizer = mustEngine(t, testPolicies+`permit (principal, action, resource) when { resource == Route::"secure" || resource == Route::"untrusted" };`)
	if err := tp.server.Update(cfg); err != nil {
		t.Fatal(err)
	}
	rec := tp.do(t, "GET", "https://app.example.com/secure/x", tp.bearer(t, "eng"))
	if rec.Code != 200 || rec.Body.String() != "tls upstream alice@example.com" {
		t.Fatalf("custom CA upstream: %d %s", rec.Code, rec.Body)
	}
	rec = tp.do(t, "GET", "https://app.example.com/untrusted/x", tp.bearer(t, "eng"))
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("upstream with an unknown CA: %d, want 502", rec.Code)
	}
}

func TestBodyLimit(t *testing.T) {
	tp := newTestProxy(t)
	cfg := tp.cfg
	cfg.MaxBodyBytes = 10
	if err := tp.server.Update(cfg); err != nil {
		t.Fatal(err)
	}
	big := httptest.NewRequest("POST", "https://app.example.com/api/upload", strings.NewReader(strings.Repeat("x", 100)))
	big.RemoteAddr = "203.0.113.7:1"
	big.Header.Set("Authorization", tp.bearerWith(t, map[string]any{"groups": []string{"eng"}, "amr": []string{"pwd", "otp"}})["Authorization"][0])
	rec := httptest.NewRecorder()
	tp.server.Handler().ServeHTTP(rec, big)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", rec.Code)
	}
}

// TestWebSocketAfterAuthz upgrades through a real listener: refused
// without a token, switched after the policy allowed it.
func TestWebSocketAfterAuthz(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Ztp-Email") == "" {
			http.Error(w, "no identity", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo " + line)
		rw.Flush()
	}))
	defer echo.Close()
	tp := newTestProxy(t)
	cfg := tp.cfg
	cfg.Routes = append([]decide.RouteConfig(nil), cfg.Routes...)
	cfg.Routes = append(cfg.Routes, decide.RouteConfig{Name: "ws", Host: "ws.example.com", PathPrefix: "/", Upstream: mustURL(t, echo.URL), Auth: decide.AuthBearer, PassIdentityHeaders: true, WebSocket: true})
	cfg.Authorizer = mustEngine(t, testPolicies+`permit (principal, action, resource == Route::"ws") when { principal in Group::"eng" };`)
	if err := tp.server.Update(cfg); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(tp.server.Handler())
	defer front.Close()

	dial := func(auth string) (string, *bufio.Reader, net.Conn) {
		conn, err := net.DialTimeout("tcp", front.Listener.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		req := "GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
		if auth != "" {
			req += "Authorization: " + auth + "\r\n"
		}
		io.WriteString(conn, req+"\r\n")
		br := bufio.NewReader(conn)
		status, _ := br.ReadString('\n')
		return status, br, conn
	}
	status, _, conn := dial("")
	conn.Close()
	if !strings.Contains(status, "401") {
		t.Fatalf("upgrade without a token: %q", status)
	}
	status, br, conn := dial(tp.bearer(t, "eng")["Authorization"][0])
	defer conn.Close()
	if !strings.Contains(status, "101") {
		t.Fatalf("authorised upgrade: %q", status)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	io.WriteString(conn, "hello\n")
	got, _ := br.ReadString('\n')
	if got != "echo hello\n" {
		t.Fatalf("tunnel: %q", got)
	}
}
