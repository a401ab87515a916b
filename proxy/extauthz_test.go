package proxy

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// extAuthzClient serves s's ext_authz API on a loopback listener and
// returns a real gRPC client for it.
func extAuthzClient(t *testing.T, s *Server) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := s.ExtAuthzServer()
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// envoyCheck is a CheckRequest as Envoy builds it: lower-case header keys,
// pseudo-headers included, the downstream peer as the source.
func envoyCheck(method, host, path string, hdr http.Header, principal string) *authv3.CheckRequest {
	headers := map[string]string{":authority": host, ":path": path, ":method": method, ":scheme": "https"}
	for k, v := range hdr {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 5555}}}},
			Principal: principal,
		},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "envoy-req-1", Method: method, Host: host, Path: path, Scheme: "https", Protocol: "HTTP/2", Headers: headers,
		}},
	}}
}

func check(t *testing.T, c authv3.AuthorizationClient, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

// okHeaders returns the upstream headers an OK response sets, failing if
// the response is not OK or a header would be appended instead of set.
func okHeaders(t *testing.T, resp *authv3.CheckResponse) (map[string]string, *authv3.OkHttpResponse) {
	t.Helper()
	ok := resp.GetOkResponse()
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK || ok == nil {
		t.Fatalf("not OK: status %v, denied %v", resp.GetStatus(), resp.GetDeniedResponse())
	}
	set := map[string]string{}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() != nil {
			t.Errorf("header %s would be appended: %v", h.GetHeader().GetKey(), h)
		}
		set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return set, ok
}

// denied checks a denied response's HTTP status and gRPC code and returns
// its headers and JSON body.
func denied(t *testing.T, resp *authv3.CheckResponse, status int, code codes.Code) (http.Header, verifyBody) {
	t.Helper()
	d := resp.GetDeniedResponse()
	if d == nil || int(d.GetStatus().GetCode()) != status || codes.Code(resp.GetStatus().GetCode()) != code {
		t.Fatalf("want %d/%v, got status %v, denied %v, ok %v", status, code, resp.GetStatus(), d, resp.GetOkResponse())
	}
	h := http.Header{}
	for _, hv := range d.GetHeaders() {
		h.Add(hv.GetHeader().GetKey(), hv.GetHeader().GetValue())
	}
	var b verifyBody
	if d.GetBody() != "" {
		if err := json.Unmarshal([]byte(d.GetBody()), &b); err != nil {
			t.Fatalf("body is not JSON: %v: %s", err, d.GetBody())
		}
	}
	return h, b
}

func TestExtAuthzAllowSetsIdentityAndRemovesSpoofs(t *testing.T) {
	e := newVerifyEnv(t)
	c := extAuthzClient(t, e.server)
	hdr := e.bearer(t, "eng")
	hdr.Set("X-Ztp-Email", "mallory@example.com")
	hdr["X_ztp_user"] = []string{"mallory"} // merged with X-Ztp-User by CGI-style apps
	hdr.Set("X-Ztp-Device", "spiffe://evil/device")
	hdr.Set("X-Auth-Request-Email", "mallory@example.com")
	hdr.Set("X-Forwarded-Client-Cert", "By=spiffe://envoy") // Envoy's own
	resp := check(t, c, envoyCheck("GET", "app.example.com", "/api/items?x=1", hdr, ""))
	set, ok := okHeaders(t, resp)
	if set["x-ztp-email"] != "alice@example.com" || set["x-ztp-groups"] != "eng" || !strings.HasSuffix(set["x-ztp-user"], "#alice") {
		t.Fatalf("identity headers: %v", set)
	}
	claims := verifyAssertionPayload(t, set["x-ztp-assertion"])
	if claims["aud"] != "api" || claims["email"] != "alice@example.com" {
		t.Fatalf("assertion claims: %v", claims)
	}
	if _, leaked := set["x-request-id"]; leaked {
		t.Error("Envoy's x-request-id would be overwritten")
	}
	remove := ok.GetHeadersToRemove()
	for _, name := range []string{"x_ztp_user", "x-ztp-device", "x-auth-request-email", "authorization"} {
		if !slices.Contains(remove, name) {
			t.Errorf("%s not removed: %v", name, remove)
		}
	}
	// Envoy removes after it sets: listing a name it sets would drop the
	// proxy's own value.
	for _, name := range []string{"x-ztp-email", "x-ztp-user", "x-forwarded-client-cert"} {
		if slices.Contains(remove, name) {
			t.Errorf("%s must not be removed: %v", name, remove)
		}
	}
	if !strings.Contains(e.audit.String(), `"request_id":"envoy-req-1"`) || !strings.Contains(e.audit.String(), `"decision":"allow"`) {
		t.Errorf("check not audited with Envoy's request id:\n%s", e.audit)
	}
}

func TestExtAuthzRemovesSpoofedHeaderItDoesNotSet(t *testing.T) {
	e := newVerifyEnv(t)
	c := extAuthzClient(t, e.server)
	hdr := e.bearerWith(t, map[string]any{"groups": []string{"eng"}}) // no email claim
	hdr.Set("X-Ztp-Email", "mallory@example.com")
	set, ok := okHeaders(t, check(t, c, envoyCheck("GET", "app.example.com", "/api/items", hdr, "")))
	if _, present := set["x-ztp-email"]; present || !slices.Contains(ok.GetHeadersToRemove(), "x-ztp-email") {
		t.Fatalf("spoofed x-ztp-email survives: set %v, remove %v", set, ok.GetHeadersToRemove())
	}
}

func TestExtAuthzRefusals(t *testing.T) {
	e := newVerifyEnv(t)
	c := extAuthzClient(t, e.server)
	eng := e.bearer(t, "eng")
	t.Run("deny", func(t *testing.T) {
		h, b := denied(t, check(t, c, envoyCheck("GET", "app.example.com", "/admin/users", eng, "")), 403, codes.PermissionDenied)
		if b.Error != "forbidden" || b.RequestID != "envoy-req-1" || h.Get("content-type") != "application/json" {
			t.Fatalf("headers %v, body %+v", h, b)
		}
		if h.Get("x-ztp-user") != "" || h.Get("x-ztp-assertion") != "" {
			t.Fatalf("a refusal carries identity: %v", h)
		}
	})
	t.Run("step-up", func(t *testing.T) {
		h, b := denied(t, check(t, c, envoyCheck("DELETE", "app.example.com", "/api/items/1", eng, "")), 401, codes.Unauthenticated)
		if !strings.Contains(h.Get("www-authenticate"), `error="insufficient_user_authentication"`) || b.StepUp != "mfa" {
			t.Fatalf("headers %v, body %+v", h, b)
		}
	})
	t.Run("missing token", func(t *testing.T) {
		h, b := denied(t, check(t, c, envoyCheck("GET", "app.example.com", "/api/items", nil, "")), 401, codes.Unauthenticated)
		if !strings.HasPrefix(h.Get("www-authenticate"), `Bearer error="invalid_request"`) || b.Error != "invalid_request" {
			t.Fatalf("headers %v, body %+v", h, b)
		}
	})
	t.Run("invalid token", func(t *testing.T) {
		bad := http.Header{"Authorization": {"Bearer not.a.jwt"}}
		h, _ := denied(t, check(t, c, envoyCheck("GET", "app.example.com", "/api/items", bad, "")), 401, codes.Unauthenticated)
		if !strings.Contains(h.Get("www-authenticate"), `error="invalid_token"`) {
			t.Fatalf("headers %v", h)
		}
	})
	t.Run("no route", func(t *testing.T) {
		denied(t, check(t, c, envoyCheck("GET", "other.example.com", "/", eng, "")), 404, codes.NotFound)
	})
	t.Run("malformed path", func(t *testing.T) {
		for _, path := range []string{"*", "/api/../admin", "/api/%2Fx", ""} {
			denied(t, check(t, c, envoyCheck("GET", "app.example.com", path, eng, "")), 400, codes.InvalidArgument)
		}
	})
	t.Run("no http attributes", func(t *testing.T) {
		denied(t, check(t, c, &authv3.CheckRequest{}), 400, codes.InvalidArgument)
	})
}

func TestExtAuthzMTLSPrincipalIsTheDevice(t *testing.T) {
	e := newVerifyEnv(t)
	c := extAuthzClient(t, e.server)
	set, _ := okHeaders(t, check(t, c, envoyCheck("GET", "app.example.com", "/devices/1", nil, "spiffe://ztproxy.dev/device/dev-laptop")))
	if set["x-ztp-device"] != "spiffe://ztproxy.dev/device/dev-laptop" || set["x-ztp-user"] != "spiffe://ztproxy.dev/device/dev-laptop" {
		t.Fatalf("headers: %v", set)
	}
	denied(t, check(t, c, envoyCheck("GET", "app.example.com", "/devices/1", nil, "spiffe://ztproxy.dev/device/other")), 403, codes.PermissionDenied)
	// No principal: Envoy verified no certificate. A client-sent header
	// naming one does not count.
	spoof := http.Header{"X-Forwarded-Client-Cert": {"URI=spiffe://ztproxy.dev/device/dev-laptop"}}
	denied(t, check(t, c, envoyCheck("GET", "app.example.com", "/devices/1", spoof, "")), 401, codes.Unauthenticated)
}

func TestExtAuthzBrowserRoutes(t *testing.T) {
	e := newVerifyEnv(t)
	c := extAuthzClient(t, e.server)
	t.Run("page load without session redirects to sign-in", func(t *testing.T) {
		hdr := http.Header{"Accept": {"text/html"}, "Sec-Fetch-Mode": {"navigate"}}
		h, _ := denied(t, check(t, c, envoyCheck("GET", "web.example.com", "/reports?q=1", hdr, "")), 302, codes.Unauthenticated)
		loc := h.Get("location")
		if !strings.HasPrefix(loc, "https://ztp.example.com/.ztp/login?") || !strings.Contains(loc, "rd=https%3A%2F%2Fweb.example.com%2Freports%3Fq%3D1") {
			t.Fatalf("location %q", loc)
		}
	})
	t.Run("API call without session is 401 with the sign-in URL", func(t *testing.T) {
		hdr := http.Header{"Accept": {"application/json"}, "Sec-Fetch-Mode": {"cors"}}
		h, b := denied(t, check(t, c, envoyCheck("GET", "web.example.com", "/reports", hdr, "")), 401, codes.Unauthenticated)
		if !strings.HasPrefix(h.Get("x-ztp-login"), "https://ztp.example.com/.ztp/login?") || b.Error != "login_required" {
			t.Fatalf("headers %v, body %+v", h, b)
		}
	})
	var cookie []string
	for _, ck := range e.session {
		cookie = append(cookie, ck.Name+"="+ck.Value)
	}
	t.Run("session allows and the session cookie is not forwarded", func(t *testing.T) {
		hdr := http.Header{"Cookie": {strings.Join(append([]string{"theme=dark"}, cookie...), "; ")}}
		set, _ := okHeaders(t, check(t, c, envoyCheck("GET", "web.example.com", "/reports", hdr, "")))
		if set["x-ztp-email"] != "alice@example.com" || set["cookie"] != "theme=dark" {
			t.Fatalf("headers: %v", set)
		}
		hdr = http.Header{"Cookie": {strings.Join(cookie, "; ")}}
		set, ok := okHeaders(t, check(t, c, envoyCheck("GET", "web.example.com", "/reports", hdr, "")))
		if _, present := set["cookie"]; present || !slices.Contains(ok.GetHeadersToRemove(), "cookie") {
			t.Fatalf("session-only cookie header: set %v, remove %v", set, ok.GetHeadersToRemove())
		}
	})
	t.Run("step-up on a non-navigation is 403 with the step-up URL", func(t *testing.T) {
		hdr := http.Header{"Cookie": cookie}
		h, b := denied(t, check(t, c, envoyCheck("DELETE", "web.example.com", "/reports/1", hdr, "")), 403, codes.PermissionDenied)
		if !strings.HasPrefix(h.Get("x-ztp-step-up"), "https://ztp.example.com/.ztp/stepup?") || b.StepUp != "mfa" {
			t.Fatalf("headers %v, body %+v", h, b)
		}
	})
}

func TestServeExtAuthzListener(t *testing.T) {
	e := newVerifyEnv(t)
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ea, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.server.Serve(ctx, Listeners{Public: pub, ExtAuthz: ea}) }()
	conn, err := grpc.NewClient(ea.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	okHeaders(t, check(t, authv3.NewAuthorizationClient(conn), envoyCheck("GET", "app.example.com", "/api/items", e.bearer(t, "eng"), "")))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
