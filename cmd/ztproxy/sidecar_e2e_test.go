package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ztproxy/certs"
	"ztproxy/internal/testenv"
)

// TestSidecarChain: a front ztproxy (bearer) → a sidecar ztproxy (`ztproxy
// sidecar`) → the service. Identity flows through the front proxy's
// assertion without a new sign-in; an assertion minted for another service
// is refused; services calling the sidecar directly authenticate with mTLS
// and policy names their SPIFFE ids.
func TestSidecarChain(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatal(out)
	}
	other := filepath.Join(dir, "other")
	if err := certs.IssueClient(filepath.Join(certDir, "ca.pem"), filepath.Join(certDir, "ca-key.pem"), other+".pem", other+"-key.pem",
		"spiffe://ztproxy.dev/ns/shop/sa/intruder", "intruder", time.Hour); err != nil {
		t.Fatal(err)
	}
	op := testenv.StartOIDC(t, testenv.OIDCOptions{
		Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: "sc-secret", RedirectURIs: []string{"http://127.0.0.1/cb"}}},
		Users:   []testenv.OIDCUser{{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}}},
	})
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "service sees "+r.Header.Get("X-Ztp-User")+" "+r.Header.Get("X-Ztp-Email")+" device="+r.Header.Get("X-Ztp-Device"))
	}))
	t.Cleanup(svc.Close)
	frontPub, frontAdm := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	scPub, scAdm := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	writeFile(t, filepath.Join(dir, "front.cedar"), `permit (principal, action, resource) when { principal in Group::"eng" };`)
	writeFile(t, filepath.Join(dir, "sidecar.cedar"), `
@id("eng-users") permit (principal, action, resource == Route::"orders") when { principal in Group::"eng" };
@id("checkout-service") permit (principal, action, resource == Route::"orders")
when { context.device.spiffe_id == "spiffe://ztproxy.dev/device/dev-laptop" };
`)
	writeFile(t, filepath.Join(dir, "front.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "http://%s"
insecure_plaintext: true
policies: [front.cedar]
idps: [{name: corp, issuer: %q, audiences: [ztproxy]}]
store: {path: front.db}
routes:
  - {name: orders, host: 127.0.0.1, path_prefix: /orders, upstream: "https://%s", upstream_ca_file: certs/ca.pem, upstream_server_name: localhost, auth: bearer}
  - {name: billing, host: 127.0.0.1, path_prefix: /billing, upstream: "https://%s", upstream_ca_file: certs/ca.pem, upstream_server_name: localhost, auth: bearer}
`, frontPub, frontAdm, frontPub, op.Issuer, scPub, scPub))
	// A minimal sidecar config: listener, trust anchors, policies (the
	// upstream comes from the command line).
	writeFile(t, filepath.Join(dir, "sidecar.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem, client_ca_file: certs/ca.pem, client_auth: request}
policies: [sidecar.cedar]
assertion: {trusted_jwks: ["http://%s/.ztp/jwks.json"]}
sidecar: {name: orders}
store: {path: sidecar.db}
`, scPub, scAdm, frontPub))
	startServe(t, filepath.Join(dir, "front.yaml"), frontAdm, frontPub)
	begin := time.Now()
	sc := startProc(t, scAdm, scPub, "sidecar", "--upstream", svc.URL, "--config", filepath.Join(dir, "sidecar.yaml"))
	ready := time.Since(begin)
	rss := vmRSS(t, sc.cmd.Process.Pid)
	t.Logf("sidecar ready in %s (including process start; readiness polled every 50 ms), RSS %d KiB", ready, rss)

	alice := op.CodeFlowTokens(t, op.Client(t, "ztproxy"), op.User(t, "alice"), "", false).IDToken
	viaFront := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+frontPub+path, nil)
		req.Header.Set("Authorization", "Bearer "+alice)
		req.Header.Set("X-Ztp-Email", "ceo@evil")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readBody(t, resp)
	}
	if st, body := viaFront("/orders/42"); st != 200 || body != "service sees "+op.Issuer+"#alice alice@ztp.test device=" {
		t.Fatalf("front → sidecar → service: %d %q", st, body)
	}
	if st, body := viaFront("/billing/42"); st != http.StatusUnauthorized {
		t.Fatalf("assertion for billing accepted by the orders sidecar: %d %s", st, body)
	}
	direct := func(c *http.Client) (int, string) {
		resp, err := c.Get("https://localhost:" + strings.Split(scPub, ":")[1] + "/orders/42")
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readBody(t, resp)
	}
	if st, body := direct(tlsClient(t, certDir, true)); st != 200 || !strings.Contains(body, "device=spiffe://ztproxy.dev/device/dev-laptop") {
		t.Fatalf("allowed service over mTLS: %d %s", st, body)
	}
	intruder := tlsClient(t, certDir, false)
	cert, err := loadKeyPair(other+".pem", other+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	intruder.Transport.(*http.Transport).TLSClientConfig.Certificates = cert
	if st, _ := direct(intruder); st != http.StatusForbidden {
		t.Fatalf("disallowed SPIFFE id: %d", st)
	}
	if st, _ := direct(tlsClient(t, certDir, false)); st != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", st)
	}
}

// vmRSS reads a process's resident set size in KiB.
func vmRSS(t *testing.T, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}
