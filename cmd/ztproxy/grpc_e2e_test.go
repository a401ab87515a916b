package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"ztproxy/internal/testenv"
)

// Issue 18 (gRPC and HTTP/2 upstreams): a real grpc-go server behind an
// h2c:// route of the real binary, called by a real grpc-go client over
// TLS with bearer tokens from the real test OP (npm oidc-provider). An
// allowed call reaches the server with the identity and brings back its
// headers and trailers; a denied call gets PERMISSION_DENIED (a
// missing token UNAUTHENTICATED) in a trailers-only gRPC response, not an
// HTML page; a server stream outlives the route timeout on a grpc route.
func TestE2EGRPCThroughH2C(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatal(out)
	}
	op := testenv.StartOIDC(t, testenv.OIDCOptions{})

	healthSrv := health.NewServer()
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		grpc.SetHeader(ctx, metadata.Pairs("x-upstream", "grpc-go"))
		grpc.SetTrailer(ctx, metadata.Pairs("x-seen-email", strings.Join(md.Get("x-ztp-email"), ","),
			"x-seen-assertion", fmt.Sprint(len(md.Get("x-ztp-assertion")) == 1)))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, healthSrv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) // grpc-go serves cleartext HTTP/2 (prior knowledge) on a plain listener
	t.Cleanup(srv.Stop)

	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	writeFile(t, filepath.Join(dir, "p.cedar"), `
@id("admins-call-grpc")
permit (principal, action, resource == Route::"grpc") when { principal in Group::"admins" };
`)
	writeFile(t, filepath.Join(dir, "ztproxy.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "https://%s"
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, audiences: [ztproxy]}
audit: {output: stdout}
routes:
  - {name: grpc, host: 127.0.0.1, upstream: "h2c://%s", auth: bearer, grpc: true, timeout: 1s}
`, public, admin, public, op.Issuer, ln.Addr()))
	p := startServe(t, filepath.Join(dir, "ztproxy.yaml"), admin, public)

	pem, err := os.ReadFile(filepath.Join(certDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := grpc.NewClient(public, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := healthpb.NewHealthClient(conn)
	client0 := op.Client(t, "ztproxy")
	alice := op.CodeFlowTokens(t, client0, op.User(t, "alice"), "", false)
	bob := op.CodeFlowTokens(t, client0, op.User(t, "bob"), "", false)
	withToken := func(tok string) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		if tok == "" {
			return ctx
		}
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}

	t.Run("allowed call with headers and trailers", func(t *testing.T) {
		var header, trailer metadata.MD
		resp, err := client.Check(withToken(alice.IDToken), &healthpb.HealthCheckRequest{}, grpc.Header(&header), grpc.Trailer(&trailer))
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check: %v %v", resp, err)
		}
		if header.Get("x-upstream")[0] != "grpc-go" || strings.Join(trailer.Get("x-seen-email"), "") != "alice@ztp.test" ||
			strings.Join(trailer.Get("x-seen-assertion"), "") != "true" {
			t.Fatalf("header %v trailer %v", header, trailer)
		}
	})
	t.Run("denied call gets a gRPC status", func(t *testing.T) {
		var header, trailer metadata.MD
		_, err := client.Check(withToken(bob.IDToken), &healthpb.HealthCheckRequest{}, grpc.Header(&header), grpc.Trailer(&trailer))
		st, _ := status.FromError(err)
		if st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "forbidden: access denied by policy") {
			t.Fatalf("bob's call: %v", err)
		}
		// On the wire: a trailers-only response (HTTP/2 200, gRPC content
		// type, grpc-status in the one HEADERS frame, no body).
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
		req, _ := http.NewRequest("POST", "https://"+public+"/grpc.health.v1.Health/Check", strings.NewReader("\x00\x00\x00\x00\x00"))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("TE", "trailers")
		req.Header.Set("Authorization", "Bearer "+bob.IDToken)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/grpc" ||
			resp.Header.Get("Grpc-Status") != "7" || body != "" {
			t.Errorf("raw denied call: HTTP/%d %d %v body %q", resp.ProtoMajor, resp.StatusCode, resp.Header, body)
		}
		if !waitForOutput(p, `"principal":"`+op.Issuer+`#bob"`, `"status":403`) {
			t.Errorf("the denied call is not audited as a 403:\n%s", p.output())
		}
	})
	t.Run("missing token", func(t *testing.T) {
		_, err := client.Check(withToken(""), &healthpb.HealthCheckRequest{})
		if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated {
			t.Fatalf("call without a token: %v", err)
		}
	})
	t.Run("a stream outlives the route timeout", func(t *testing.T) {
		stream, err := client.Watch(withToken(alice.IDToken), &healthpb.HealthCheckRequest{Service: "svc"})
		if err != nil {
			t.Fatal(err)
		}
		healthSrv.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
		first, err := stream.Recv()
		if err != nil {
			t.Fatalf("first message: %v", err)
		}
		time.Sleep(1500 * time.Millisecond) // longer than the route's timeout: 1s
		healthSrv.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
		second, err := stream.Recv()
		if err != nil || second.Status != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("after the route timeout: first %v, second %v %v", first, second, err)
		}
	})
}

// waitForOutput waits up to 5 s for a line of the proxy's output with
// every one of parts.
func waitForOutput(p *proc, parts ...string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(p.output(), "\n") {
			all := true
			for _, part := range parts {
				all = all && strings.Contains(line, part)
			}
			if all {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
