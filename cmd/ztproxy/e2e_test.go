package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"ztproxy/internal/testenv"
)

const e2ePolicies = `
@id("reporting-service-reads")
permit (principal, action == Action::"GET", resource == Route::"api")
when { context.identity.claims has client_id && context.identity.claims.client_id == "svc-reporting" };

@id("eng-uses-api")
permit (principal, action, resource == Route::"api") when { principal in Group::"eng" };

@id("admins-only")
permit (principal, action, resource == Route::"admin") when { principal in Group::"admins" };

@id("laptops")
permit (principal, action, resource == Route::"devices")
when { context.device.spiffe_id == "spiffe://ztproxy.dev/device/dev-laptop" };

@id("slow-public")
permit (principal, action, resource == Route::"slow");
`

type e2eEnv struct {
	dir, certDir, configPath, policyPath string
	publicAddr, adminAddr                string
	op                                   *testenv.OIDCProvider
	upstream                             *httptest.Server
	mu                                   sync.Mutex
	seen                                 []http.Header
}

func (e *e2eEnv) lastSeen() http.Header {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		return nil
	}
	return e.seen[len(e.seen)-1]
}

func (e *e2eEnv) config(policyGlob string) string {
	return fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "https://%s"
tls:
  cert_file: certs/server.pem
  key_file: certs/server-key.pem
  client_ca_file: certs/ca.pem
  client_auth: request
timezone: Europe/Berlin
policies: [%q]
idps:
  - name: corp
    issuer: %q
    audiences: [%q, "ztproxy"]
    claims: [client_id, scope]
server:
  shutdown_grace: 10s
audit:
  output: %q
routes:
  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: %q, auth: bearer}
  - {name: admin, host: 127.0.0.1, path_prefix: /admin, upstream: %q, auth: bearer}
  - {name: devices, host: 127.0.0.1, path_prefix: /devices, upstream: %q, auth: mtls}
  - {name: slow, host: 127.0.0.1, path_prefix: /slow, upstream: %q, auth: public}
`, e.publicAddr, e.adminAddr, e.publicAddr, policyGlob, e.op.Issuer, e.op.Resource,
		filepath.Join(e.dir, "audit.log"), e.upstream.URL, e.upstream.URL, e.upstream.URL, e.upstream.URL)
}

func newE2E(t *testing.T) *e2eEnv {
	e := &e2eEnv{dir: t.TempDir()}
	e.certDir = filepath.Join(e.dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", e.certDir); code != 0 {
		t.Fatalf("certs dev: %d %s", code, out)
	}
	e.op = testenv.StartOIDC(t, testenv.OIDCOptions{})
	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Header.Clone())
		e.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/slow") {
			time.Sleep(1500 * time.Millisecond)
		}
		io.WriteString(w, "hello from "+r.URL.Path)
	}))
	t.Cleanup(e.upstream.Close)
	e.publicAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.adminAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.policyPath = filepath.Join(e.dir, "policies", "main.cedar")
	writeFile(t, e.policyPath, e2ePolicies)
	e.configPath = filepath.Join(e.dir, "ztproxy.yaml")
	writeFile(t, e.configPath, e.config("policies/*.cedar"))
	return e
}

// TestE2E runs the real binary with real TLS and mTLS (certs from `certs
// dev`) against a real OpenID provider (npm oidc-provider), and walks the
// README's story: bearer calls, device certificates, a verifiable
// assertion, metrics, reloads good and bad, and a draining shutdown.
func TestE2E(t *testing.T) {
	e := newE2E(t)
	p := startServe(t, e.configPath, e.adminAddr, e.publicAddr)
	base := "https://" + e.publicAddr
	client := tlsClient(t, e.certDir, false)
	device := tlsClient(t, e.certDir, true)

	alice := e.op.CodeFlowTokens(t, e.op.Client(t, "ztproxy"), e.op.User(t, "alice"), "", false)
	bob := e.op.CodeFlowTokens(t, e.op.Client(t, "ztproxy"), e.op.User(t, "bob"), "", false)
	svc := e.op.ClientCredentialsToken(t, "svc-reporting", "svc-reporting-test-secret", e.op.Resource, "api:read")

	t.Run("service access token", func(t *testing.T) {
		resp, body := get(t, client, base+"/api/report", map[string]string{"Authorization": "Bearer " + svc})
		if resp.StatusCode != 200 || body != "hello from /api/report" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("user id token and assertion", func(t *testing.T) {
		resp, body := get(t, client, base+"/admin/panel", map[string]string{"Authorization": "Bearer " + alice.IDToken, "X-Ztp-Email": "ceo@evil"})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		h := e.lastSeen()
		if h.Get("X-Ztp-Email") != "alice@ztp.test" || !strings.Contains(h.Get("X-Ztp-Groups"), "admins") {
			t.Fatalf("identity headers: %v", h)
		}
		claims := verifyE2EAssertion(t, client, base, h.Get("X-Ztp-Assertion"), "admin")
		if claims["email"] != "alice@ztp.test" {
			t.Fatalf("assertion claims %v", claims)
		}
		if verifyErr := tryVerifyAssertion(t, client, base, h.Get("X-Ztp-Assertion"), "api"); verifyErr == nil {
			t.Fatal("assertion for route admin accepted by a verifier for route api")
		}
	})
	t.Run("policy denies bob on admin", func(t *testing.T) {
		resp, _ := get(t, client, base+"/admin/panel", map[string]string{"Authorization": "Bearer " + bob.IDToken})
		if resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("missing and forged tokens", func(t *testing.T) {
		resp, _ := get(t, client, base+"/api/x", nil)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		forged := alice.IDToken[:len(alice.IDToken)-4] + "AAAA"
		resp, _ = get(t, client, base+"/api/x", map[string]string{"Authorization": "Bearer " + forged})
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
			t.Fatalf("forged: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("mtls device", func(t *testing.T) {
		resp, body := get(t, device, base+"/devices/inventory", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("with device cert: %d %s", resp.StatusCode, body)
		}
		if d := e.lastSeen().Get("X-Ztp-Device"); d != "spiffe://ztproxy.dev/device/dev-laptop" {
			t.Fatalf("X-Ztp-Device = %q", d)
		}
		resp, _ = get(t, client, base+"/devices/inventory", nil)
		if resp.StatusCode != 401 {
			t.Fatalf("without device cert: %d", resp.StatusCode)
		}
	})
	t.Run("metrics on admin only", func(t *testing.T) {
		m := p.metrics(t)
		for _, want := range []string{`ztproxy_requests_total{code="200",decision="allow",route="api"}`, "ztproxy_authz_eval_seconds", "ztproxy_cert_expiry_timestamp_seconds", "ztproxy_upstream_seconds"} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		resp, _ := get(t, client, base+"/metrics", nil)
		if resp.StatusCode != 404 {
			t.Errorf("public /metrics: %d", resp.StatusCode)
		}
	})
	t.Run("audit log", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(e.dir, "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) < 5 {
			t.Fatalf("audit has %d lines", len(lines))
		}
		for _, l := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("audit line not JSON: %s", l)
			}
			if strings.Contains(l, alice.IDToken[:20]) || strings.Contains(l, svc[:20]) {
				t.Fatal("audit line contains a token")
			}
		}
		if !strings.Contains(string(data), `"decision":"deny"`) || !strings.Contains(string(data), `"policy_ids":["admins-only"]`) {
			t.Errorf("audit lacks the deny or the deciding policy:\n%s", data)
		}
	})
	t.Run("invalid config keeps serving", func(t *testing.T) {
		writeFile(t, e.configPath, e.config("policies/*.cedar")+"\nbogus_key: 1\n")
		waitFor(t, 10*time.Second, "reload failure metric", func() bool {
			return strings.Contains(p.metrics(t), `ztproxy_config_reloads_total{result="failure"} 1`)
		})
		resp, _ := get(t, client, base+"/admin/panel", map[string]string{"Authorization": "Bearer " + alice.IDToken})
		if resp.StatusCode != 200 {
			t.Fatalf("after a bad reload: %d", resp.StatusCode)
		}
		writeFile(t, e.configPath, e.config("policies/*.cedar"))
	})
	t.Run("policy change reloads", func(t *testing.T) {
		writeFile(t, e.policyPath, strings.Replace(e2ePolicies, `Group::"admins"`, `Group::"nobody"`, 1))
		waitFor(t, 10*time.Second, "policy reload", func() bool {
			resp, _ := get(t, client, base+"/admin/panel", map[string]string{"Authorization": "Bearer " + alice.IDToken})
			return resp.StatusCode == 403
		})
		writeFile(t, e.policyPath, "this is not cedar")
		waitFor(t, 10*time.Second, "second reload failure", func() bool {
			return strings.Contains(p.metrics(t), `ztproxy_config_reloads_total{result="failure"} 2`)
		})
		// The broken policy file did not replace the last good policies.
		resp, _ := get(t, client, base+"/api/x", map[string]string{"Authorization": "Bearer " + bob.IDToken})
		if resp.StatusCode != 200 {
			t.Fatalf("after a broken policy file: %d", resp.StatusCode)
		}
	})
	t.Run("SIGTERM drains in-flight requests", func(t *testing.T) {
		type result struct {
			status int
			err    error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := client.Get(base + "/slow/report")
			if err != nil {
				done <- result{err: err}
				return
			}
			resp.Body.Close()
			done <- result{status: resp.StatusCode}
		}()
		time.Sleep(300 * time.Millisecond) // the request is now at the upstream
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || r.status != 200 {
			t.Fatalf("in-flight request during drain: %d %v", r.status, r.err)
		}
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			t.Fatal("ztproxy did not exit after SIGTERM")
		}
		if p.exit != 0 {
			t.Fatalf("exit code %d", p.exit)
		}
	})
}

func fetchJWKS(t *testing.T, c *http.Client, base string) jose.JSONWebKeySet {
	t.Helper()
	resp, body := get(t, c, base+"/.ztp/jwks.json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("jwks: %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

func tryVerifyAssertion(t *testing.T, c *http.Client, base, raw, aud string) error {
	_, err := verifyAssertionClaims(t, c, base, raw, aud)
	return err
}

func verifyE2EAssertion(t *testing.T, c *http.Client, base, raw, aud string) map[string]any {
	t.Helper()
	claims, err := verifyAssertionClaims(t, c, base, raw, aud)
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	return claims
}

func verifyAssertionClaims(t *testing.T, c *http.Client, base, raw, aud string) (map[string]any, error) {
	set := fetchJWKS(t, c, base)
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	if len(tok.Headers) == 0 {
		return nil, fmt.Errorf("no header")
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		return nil, fmt.Errorf("unknown kid")
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(keys[0].Key, &std, &all); err != nil {
		return nil, err
	}
	return all, std.ValidateWithLeeway(jwt.Expected{Issuer: base, AnyAudience: jwt.Audience{aud}, Time: time.Now()}, 0)
}
