package main

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// deviceReplicas is two `ztproxy serve` replicas with devices enabled on
// one real dynalite, and alice's device enrolled through A with an
// encrypted disk reported.
type deviceReplicas struct {
	*deviceEnv
	pubB     string
	b        *proc
	id       string       // the enrolled device
	dc       *http.Client // presents the device's certificate
	aliceTok string       // alice's bearer token

}

// newDeviceReplicas starts the replicas with devices.cache_ttl cacheTTL
// and top (with %[1]s for the replica's name) added to both
// configurations.
func newDeviceReplicas(t *testing.T, cacheTTL, top string) *deviceReplicas {
	ddb := testenv.StartDynalite(t)
	pubA := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	store := fmt.Sprintf("{backend: dynamodb, endpoint: %q, table_prefix: dev_, revocation_journal: %%s-journal.db}", ddb.Endpoint)
	opts := func(name, pub, adm string) deviceEnvOptions {
		return deviceEnvOptions{public: pub, admin: adm, name: name, store: fmt.Sprintf(store, name), cacheTTL: cacheTTL,
			top: strings.ReplaceAll(top, "%[1]s", name)}
	}
	e := newDeviceEnv(t, deviceEnvOptions{public: pubA, name: "a", store: fmt.Sprintf(store, "a"), noStart: true})
	if code, out := runZtproxy(t, "store", "init", "--config", e.configPath("a")); code != 0 || !strings.Contains(out, "dev_devices ready") {
		t.Fatalf("store init: %d %s", code, out)
	}
	admA := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.writeConfig(t, opts("a", pubA, admA))
	e.proc = startServe(t, e.configPath("a"), admA, pubA)
	pubB, admB := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.writeConfig(t, opts("b", pubB, admB))
	r := &deviceReplicas{deviceEnv: e, pubB: pubB, b: startServe(t, e.configPath("b"), admB, pubB)}

	browser := e.browserEnv.client(t)
	e.op.Login(t, browser, e.base+"/", e.op.User(t, "alice"), true)
	devDir := filepath.Join(e.dir, "dev")
	r.id = deviceIDRE.FindStringSubmatch(e.enroll(t, browser, "alice", devDir))[1]
	if code, out := runZtproxy(t, "device", "report", "--dir", devDir, "--fact", "disk_encrypted=true"); code != 0 {
		t.Fatalf("report: %d %s", code, out)
	}
	r.aliceTok, r.dc = e.token(t, "alice"), e.deviceClient(t, devDir)
	return r
}

// pubs are both replicas' listen addresses.
func (r *deviceReplicas) pubs() []string {
	return []string{strings.TrimPrefix(r.base, "https://"), r.pubB}
}

// status is the answer to alice's device on pub's path.
func (r *deviceReplicas) status(t *testing.T, pub, path string) int {
	code, _ := call(t, r.dc, "https://"+pub+path, r.aliceTok)
	return code
}

// Issue 16: the inventory lives in DynamoDB (dynalite) shared by two
// replicas: a device enrolled through A is known to B, and B served it
// from its cache. Issue 17: `devices revoke` and `devices set-managed`
// only reached the other replica after devices.cache_ttl; they now go
// through the change feed, so with a one-minute cache both replicas see
// them within a second, as they see an owner's removal on the devices
// page.
func TestDeviceRevocationAcrossReplicasE2E(t *testing.T) {
	r := newDeviceReplicas(t, "1m", "")
	onB := "https://" + r.pubB + "/api/x"
	if code, body := call(t, r.dc, onB, r.aliceTok); code != 200 {
		t.Fatalf("replica B before the revocation: %d %s", code, body)
	}
	for _, pub := range r.pubs() {
		if st := r.status(t, pub, "/managed/x"); st != http.StatusForbidden {
			t.Fatalf("an unmanaged device on the managed route of %s: %d", pub, st)
		}
	}
	list := func() string {
		code, out := runZtproxy(t, "devices", "list", "--config", r.configPath("a"))
		if code != 0 {
			t.Fatalf("devices list: %d %s", code, out)
		}
		return out
	}
	if out := list(); !strings.Contains(out, r.id) || !strings.Contains(out, `"active"`) {
		t.Fatalf("devices list: %s", out)
	}
	if code, out := runZtproxy(t, "devices", "set-managed", r.id, "true", "--config", r.configPath("a")); code != 0 {
		t.Fatalf("devices set-managed: %d %s", code, out)
	}
	took := within(t, time.Second, "set-managed true", func(pub string) bool { return r.status(t, pub, "/managed/x") == 200 }, r.pubs()...)
	t.Logf("devices set-managed seen on both replicas after %s (cache_ttl 1m)", took)

	if code, out := runZtproxy(t, "devices", "revoke", r.id, "--reason", "laptop stolen", "--config", r.configPath("a")); code != 0 || !strings.Contains(out, "is revoked") {
		t.Fatalf("devices revoke: %d %s", code, out)
	}
	took = within(t, time.Second, "devices revoke", func(pub string) bool {
		code, body := call(t, r.dc, "https://"+pub+"/api/x", r.aliceTok)
		return code == http.StatusForbidden && strings.Contains(body, "device_revoked")
	}, r.pubB, strings.TrimPrefix(r.base, "https://"))
	t.Logf("devices revoke refused on both replicas after %s (cache_ttl 1m)", took)
	if out := list(); !strings.Contains(out, `"revoked"`) {
		t.Errorf("devices list after revoke: %s", out)
	}
	if code, out := runZtproxy(t, "devices", "show", r.id, "--config", r.configPath("a")); code != 0 || !strings.Contains(out, "laptop stolen") {
		t.Errorf("devices show: %d %s", code, out)
	}
	if !strings.Contains(r.b.metrics(t), `ztproxy_devices_lookups_total{result="cached"}`) {
		t.Error("replica B never answered from its cache")
	}

	// The owner removes another device on A's devices page: B refuses it
	// within a second too.
	browser := r.browserEnv.client(t)
	r.op.Login(t, browser, r.base+"/", r.op.User(t, "alice"), true)
	dir2 := filepath.Join(r.dir, "dev2")
	id2 := deviceIDRE.FindStringSubmatch(r.enroll(t, browser, "alice", dir2))[1]
	if code, out := runZtproxy(t, "device", "report", "--dir", dir2, "--fact", "disk_encrypted=true"); code != 0 {
		t.Fatalf("report: %d %s", code, out)
	}
	dc2 := r.deviceClient(t, dir2)
	if code, body := call(t, dc2, onB, r.aliceTok); code != 200 {
		t.Fatalf("the second device on B: %d %s", code, body)
	}
	r.op.Login(t, dc2, r.base+"/", r.op.User(t, "alice"), false)
	resp := r.postForm(t, dc2, r.base+"/.ztp/devices/remove", url.Values{"id": {id2}})
	if body := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "revoked") {
		t.Fatalf("remove: %d %s", resp.StatusCode, body)
	}
	took = within(t, time.Second, "removed by its owner", func(pub string) bool {
		code, body := call(t, dc2, "https://"+pub+"/api/x", r.aliceTok)
		return code == http.StatusForbidden && strings.Contains(body, "device_revoked")
	}, r.pubB)
	t.Logf("a device removed by its owner on A refused on B after %s (cache_ttl 1m)", took)
}
