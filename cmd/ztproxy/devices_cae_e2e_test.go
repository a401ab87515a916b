package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeviceSignalsAcrossReplicasE2E: issue 17, a security tool's CAEP
// device-compliance-change and an operator's device revocation through
// the operator API must reach every replica at the next request, not
// after devices.cache_ttl (one minute here). A SET built with go-jose
// marks alice's enrolled device not compliant: both replicas refuse it on
// a route that requires a managed device, and a compliant SET restores
// it. The operator API's device endpoints refuse anonymous and
// wrong-group callers, show the device to an operator, revoke it on both
// replicas within a second, and the audit log names the operator.
func TestDeviceSignalsAcrossReplicasE2E(t *testing.T) {
	tr := newSETTransmitter(t)
	auditDir := t.TempDir()
	r := newDeviceReplicas(t, "1m", fmt.Sprintf(`audit: {output: %s}
security_events:
  transmitters:
    - {name: guard, issuer: %q, jwks_url: %q, idp: corp}
admin_api:
  bearer_idp: corp
  admin_groups: [ztp-admins]
`, filepath.Join(auditDir, "%[1]s-audit.log"), tr.issuer, tr.jwks.URL))
	auditB := filepath.Join(auditDir, "b-audit.log")
	c := r.browserEnv.client(t)
	pubs := r.pubs()
	if code, out := runZtproxy(t, "devices", "set-managed", r.id, "true", "--config", r.configPath("a")); code != 0 {
		t.Fatalf("devices set-managed: %d %s", code, out)
	}
	within(t, time.Second, "managed", func(pub string) bool { return r.status(t, pub, "/managed/x") == 200 }, pubs...)

	t.Run("CAEP device-compliance-change applies on both replicas", func(t *testing.T) {
		compliance := func(status string) string {
			return tr.sign(t, tr.claims(r.base, caepEvent+"device-compliance-change",
				map[string]any{"format": "complex", "device": map[string]any{"format": "opaque", "id": r.id}},
				map[string]any{"previous_status": "compliant", "current_status": status}), nil, "")
		}
		if st, code := push(t, c, r.pubB, "application/secevent+jwt", compliance("not-compliant")); st != http.StatusAccepted {
			t.Fatalf("not-compliant SET: %d %s", st, code)
		}
		took := within(t, time.Second, "not compliant", func(pub string) bool { return r.status(t, pub, "/managed/x") == http.StatusForbidden }, pubs...)
		t.Logf("device-compliance-change not-compliant refused on both replicas after %s (cache_ttl 1m)", took)
		for _, pub := range pubs {
			if st := r.status(t, pub, "/api/x"); st != 200 {
				t.Errorf("a non-compliant device is still enrolled and active on %s: %d", pub, st)
			}
		}
		if st, code := push(t, c, r.pubB, "application/secevent+jwt", compliance("compliant")); st != http.StatusAccepted {
			t.Fatalf("compliant SET: %d %s", st, code)
		}
		within(t, time.Second, "compliant again", func(pub string) bool { return r.status(t, pub, "/managed/x") == 200 }, pubs...)
	})
	t.Run("the operator API's device endpoints", func(t *testing.T) {
		base := "https://" + r.pubB
		ops, alice := "Bearer "+r.deviceEnv.token(t, "ops"), "Bearer "+r.aliceTok
		for _, tc := range []struct {
			name, method, path, authz string
			want                      int
		}{
			{"anonymous get", "GET", "/device?id=" + r.id, "", 401},
			{"anonymous revoke", "POST", "/device/revoke?id=" + r.id, "", 401},
			{"wrong-group get", "GET", "/device?id=" + r.id, alice, 403},
			{"wrong-group revoke", "POST", "/device/revoke?id=" + r.id, alice, 403},
			{"unknown device", "GET", "/device?id=dev-unknown", ops, 404},
		} {
			if st, body := adminCall(t, c, base, tc.method, tc.path, tc.authz, `{"reason":"x"}`); st != tc.want {
				t.Errorf("%s: %d %s, want %d", tc.name, st, body, tc.want)
			}
		}
		if st, body := adminCall(t, c, base, "GET", "/device?id="+r.id, ops, ""); st != 200 ||
			!strings.Contains(body, `"id":"`+r.id+`"`) || !strings.Contains(body, `"status":"active"`) || !strings.Contains(body, `"managed":true`) {
			t.Fatalf("get device: %d %s", st, body)
		}
		for _, pub := range pubs {
			if st := r.status(t, pub, "/api/x"); st != 200 {
				t.Fatalf("the device after refused calls on %s: %d", pub, st)
			}
		}
		st, body := adminCall(t, c, base, "POST", "/device/revoke?id="+r.id, ops, `{"status":"lost","reason":"Security Hub finding 7"}`)
		if st != 200 || !strings.Contains(body, `"status":"lost"`) || !strings.Contains(body, `"status_by":"admin-api:`+r.op.Issuer+`#ops"`) {
			t.Fatalf("revoke device: %d %s", st, body)
		}
		took := within(t, time.Second, "device refused", func(pub string) bool {
			code, body := call(t, r.dc, "https://"+pub+"/api/x", r.aliceTok)
			return code == http.StatusForbidden && strings.Contains(body, "device_revoked")
		}, pubs...)
		t.Logf("operator API device revocation refused on both replicas after %s (cache_ttl 1m)", took)
		waitFor(t, 5*time.Second, "the audit log to name the operator", func() bool {
			audit, _ := os.ReadFile(auditB)
			for _, line := range strings.Split(string(audit), "\n") {
				if strings.Contains(line, `"path":"/.ztp/admin/v1/device/revoke"`) && strings.Contains(line, `"principal":"`+r.op.Issuer+`#ops"`) {
					return true
				}
			}
			return false
		})
	})
}
