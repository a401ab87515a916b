package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// adminCall sends an operator API call and returns the status and body.
func adminCall(t *testing.T, c *http.Client, base, method, path, authz, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+"/.ztp/admin/v1"+path, strings.NewReader(body))
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestAdminAPI: issue 17, automation had no authenticated way to act. The
// operator API on the TLS listener takes an operator's client certificate
// or an admin-group bearer token, refuses anonymous, wrong-group and
// plain-HTTP callers, and its flag and session actions reach both
// replicas within a second, audited with the operator.
func TestAdminAPI(t *testing.T) {
	k := newKillSwitchEnvWith(t, false, `admin_api:
  client_spiffe_ids: ["spiffe://ztproxy.dev/device/dev-laptop"]
  bearer_idp: corp
  admin_groups: [ztp-admins]
`)
	c := tlsClient(t, k.certDir, false)
	device := tlsClient(t, k.certDir, true)
	base := "https://" + k.pubB
	bob := url.QueryEscape(k.op.Issuer + "#bob")
	bobTok := "Bearer " + k.op.CodeFlowTokens(t, k.op.Client(t, "ztproxy"), k.op.User(t, "bob"), "", false).IDToken
	aliceTok := "Bearer " + k.op.CodeFlowTokens(t, k.op.Client(t, "ztproxy"), k.op.User(t, "alice"), "", false).IDToken
	opsTok := "Bearer " + k.op.CodeFlowTokens(t, k.op.Client(t, "ztproxy"), k.op.User(t, "ops"), "", false).IDToken
	both := []string{k.pubA, k.pubB}

	t.Run("anonymous, wrong-group and forged callers are refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, authz string
			want        int
		}{
			{"anonymous", "", 401}, {"wrong group", aliceTok, 403}, {"forged token", opsTok[:len(opsTok)-4] + "AAAA", 401},
			{"basic auth", "Basic b3BzOm9wcy1wdw==", 401},
		} {
			if st, body := adminCall(t, c, base, "PUT", "/flag?user="+bob, tc.authz, `{"level":"compromised","reason":"x"}`); st != tc.want {
				t.Errorf("%s: %d %s, want %d", tc.name, st, body, tc.want)
			}
		}
		time.Sleep(400 * time.Millisecond)
		if st := k.status(t, c, k.pubA, "/api/x", "", bobTok); st != 200 {
			t.Errorf("bob after refused calls: %d", st)
		}
	})
	t.Run("plain HTTP is refused", func(t *testing.T) {
		pub, adm := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		path := k.config("plain", pub, adm)
		data, _ := os.ReadFile(path)
		plain := strings.Replace(string(data), "tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem, client_ca_file: certs/ca.pem, client_auth: request}", "insecure_plaintext: true", 1)
		plain = strings.Replace(plain, "  - {name: svc, host: 127.0.0.1, path_prefix: /svc, upstream:", "  - {name: svc2, host: 127.0.0.1, path_prefix: /svc, auth: bearer, upstream:", 1)
		plain = strings.Replace(plain, ", auth: mtls}", "}", 1)
		writeFile(t, path, plain)
		startServe(t, path, adm, pub)
		if st, body := adminCall(t, http.DefaultClient, "http://"+pub, "PUT", "/flag?user="+bob, opsTok, `{"level":"compromised","reason":"x"}`); st != 403 || !strings.Contains(body, "TLS") {
			t.Errorf("plain HTTP: %d %s", st, body)
		}
	})
	t.Run("an admin-group token flags a principal on both replicas", func(t *testing.T) {
		st, body := adminCall(t, c, base, "PUT", "/flag?user="+bob, opsTok, `{"level":"compromised","reason":"GuardDuty finding 42"}`)
		if st != 200 || !strings.Contains(body, `"set_by":"admin-api:`+k.op.Issuer+`#ops"`) {
			t.Fatalf("set flag: %d %s", st, body)
		}
		took := within(t, time.Second, "bob refused", func(pub string) bool { return k.status(t, c, pub, "/api/x", "", bobTok) == 403 }, both...)
		t.Logf("admin API flag enforced on both replicas after %s", took)
		if st, body := adminCall(t, c, base, "GET", "/flag?user="+bob, opsTok, ""); st != 200 || !strings.Contains(body, "GuardDuty finding 42") {
			t.Errorf("get flag: %d %s", st, body)
		}
		if st, _ := adminCall(t, device, base, "DELETE", "/flag?user="+bob, "", ""); st != 204 {
			t.Fatalf("clear flag with the operator's certificate: %d", st)
		}
		within(t, time.Second, "bob allowed", func(pub string) bool { return k.status(t, c, pub, "/api/x", "", bobTok) == 200 }, both...)
	})
	t.Run("an operator certificate revokes a user's sessions", func(t *testing.T) {
		cookie := k.signIn(t, "alice")
		st, body := adminCall(t, device, base, "POST", "/sessions/revoke?user="+k.op.Issuer+"%23alice", "", "")
		if st != 200 || !strings.Contains(body, `"revoked_sessions":1`) {
			t.Fatalf("revoke: %d %s", st, body)
		}
		within(t, time.Second, "alice's session refused", func(pub string) bool {
			return k.status(t, c, pub, "/app/x", cookie, "") == http.StatusFound
		}, both...)
		if st, _ := adminCall(t, device, base, "POST", "/sessions/revoke?user=alice", "", ""); st != 400 {
			t.Errorf("a bare name: %d, want 400", st)
		}
	})
	waitFor(t, 5*time.Second, "the audit log to name the operator", func() bool {
		audit, _ := os.ReadFile(filepath.Join(k.dir, "b-audit.log"))
		return strings.Contains(string(audit), `"path":"/.ztp/admin/v1/flag","client_ip":"127.0.0.1","auth":"bearer","principal":"`+k.op.Issuer+`#ops"`)
	})
}
