package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// Issue 16: the inventory lives in DynamoDB (dynalite) shared by two
// replicas: a device enrolled through A is known to B, and a revocation
// made with the operator CLI is refused by both within
// devices.cache_ttl (2s), while B served the device from its cache
// before.
func TestDeviceRevocationAcrossReplicasE2E(t *testing.T) {
	ddb := testenv.StartDynalite(t)
	pubA := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	store := fmt.Sprintf("{backend: dynamodb, endpoint: %q, table_prefix: dev_, revocation_journal: %%s-journal.db}", ddb.Endpoint)
	e := newDeviceEnv(t, deviceEnvOptions{public: pubA, name: "a", store: fmt.Sprintf(store, "a"), noStart: true})
	if code, out := runZtproxy(t, "store", "init", "--config", e.configPath("a")); code != 0 || !strings.Contains(out, "dev_devices ready") {
		t.Fatalf("store init: %d %s", code, out)
	}
	admA := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.writeConfig(t, deviceEnvOptions{public: pubA, admin: admA, name: "a", store: fmt.Sprintf(store, "a")})
	e.proc = startServe(t, e.configPath("a"), admA, pubA)
	pubB, admB := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.writeConfig(t, deviceEnvOptions{public: pubB, admin: admB, name: "b", store: fmt.Sprintf(store, "b")})
	b := startServe(t, e.configPath("b"), admB, pubB)

	browser := e.browserEnv.client(t)
	e.op.Login(t, browser, e.base+"/", e.op.User(t, "alice"), true)
	devDir := filepath.Join(e.dir, "dev")
	id := deviceIDRE.FindStringSubmatch(e.enroll(t, browser, "alice", devDir))[1]
	if code, out := runZtproxy(t, "device", "report", "--dir", devDir, "--fact", "disk_encrypted=true"); code != 0 {
		t.Fatalf("report: %d %s", code, out)
	}
	token := e.token(t, "alice")
	dc := e.deviceClient(t, devDir)
	onB := "https://" + pubB + "/api/x"
	if code, body := call(t, dc, onB, token); code != 200 {
		t.Fatalf("replica B before the revocation: %d %s", code, body)
	}
	list := func() string {
		code, out := runZtproxy(t, "devices", "list", "--config", e.configPath("a"))
		if code != 0 {
			t.Fatalf("devices list: %d %s", code, out)
		}
		return out
	}
	if out := list(); !strings.Contains(out, id) || !strings.Contains(out, `"active"`) {
		t.Fatalf("devices list: %s", out)
	}
	if code, out := runZtproxy(t, "devices", "revoke", id, "--reason", "laptop stolen", "--config", e.configPath("a")); code != 0 || !strings.Contains(out, "is revoked") {
		t.Fatalf("devices revoke: %d %s", code, out)
	}
	revoked := time.Now()
	var code int
	var body string
	for time.Since(revoked) < 5*time.Second {
		if code, body = call(t, dc, onB, token); code == http.StatusForbidden {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if took := time.Since(revoked); code != http.StatusForbidden || !strings.Contains(body, "device_revoked") || took > 2*time.Second+time.Second {
		t.Fatalf("replica B after the revocation: %d %s after %v (cache_ttl 2s)", code, body, took)
	}
	if code, body := call(t, dc, e.base+"/api/x", token); code != http.StatusForbidden || !strings.Contains(body, "device_revoked") {
		t.Errorf("replica A after the revocation: %d %s", code, body)
	}
	if out := list(); !strings.Contains(out, `"revoked"`) {
		t.Errorf("devices list after revoke: %s", out)
	}
	if code, out := runZtproxy(t, "devices", "show", id, "--config", e.configPath("a")); code != 0 || !strings.Contains(out, "laptop stolen") {
		t.Errorf("devices show: %d %s", code, out)
	}
	if !strings.Contains(b.metrics(t), `ztproxy_devices_lookups_total{result="cached"}`) {
		t.Error("replica B never answered from its cache")
	}
}
