package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"ztproxy/internal/testenv"
)

// TestRiskCountsOnceAcrossDynamoHang (issue 14.5): DynamoDB hung with
// SIGSTOP while requests arrive, then thawed. Flushes during the hang time
// out on the proxy while dynalite queues them and applies them on waking;
// the proxy resent the accumulated aggregate, so 12 requests were stored as
// 20–26. Now each batch is resent under its number and applies once.
func TestRiskCountsOnceAcrossDynamoHang(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatal(out)
	}
	ddb := testenv.StartDynaliteWith(t, testenv.DynaliteOptions{Persist: true})
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	client := testenv.OIDCClient{ID: "ztproxy", Secret: "hang-secret", RedirectURIs: []string{"https://" + public + "/.ztp/callback"}}
	op := testenv.StartOIDC(t, testenv.OIDCOptions{
		Clients: []testenv.OIDCClient{client},
		Users:   []testenv.OIDCUser{{Sub: "erin", Email: "erin@ztp.test", Password: "erin-pw", Groups: []string{"eng"}}},
	})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), `permit (principal, action, resource) when { principal in Group::"eng" };`)
	cfg := filepath.Join(dir, "z.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "https://%s"
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, audiences: [ztproxy]}
store: {backend: dynamodb, endpoint: %q, table_prefix: h_, revocation_journal: revocations.db}
risk: {profile_ttl: 1h, flush_interval: 500ms, unknown_user_score: 10}
routes:
  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: %q, auth: bearer}
`, public, admin, public, op.Issuer, ddb.Endpoint, up.URL))
	if code, out := runZtproxy(t, "store", "init", "--config", cfg); code != 0 {
		t.Fatalf("store init: %d %s", code, out)
	}
	p := startServe(t, cfg, admin, public)
	https := tlsClient(t, certDir, false)
	token := op.CodeFlowTokens(t, client, op.User(t, "erin"), "", false).IDToken
	call := func(n int) {
		for range n {
			req, _ := http.NewRequest("GET", "https://"+public+"/api/x", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := https.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request: %d", resp.StatusCode)
			}
		}
	}
	call(4)
	time.Sleep(time.Second) // flushed
	ddb.Pause(t)
	call(4) // a cached profile: the hot path does not wait on the store
	time.Sleep(4 * time.Second)
	ddb.Resume(t)
	call(4)
	time.Sleep(2 * time.Second)
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if p.exit != 0 {
		t.Fatalf("exit %d:\n%s", p.exit, p.output())
	}
	code, out := runZtproxy(t, "risk", "show", op.Issuer+"#erin", "--config", cfg)
	if code != 0 {
		t.Fatal(out)
	}
	var shown struct {
		Profile struct {
			Requests int64 `json:"requests"`
		} `json:"profile"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("risk show: %v\n%s", err, out)
	}
	if shown.Profile.Requests != 12 {
		t.Fatalf("stored %d requests, want 12; flush log:\n%s", shown.Profile.Requests, grepLines(p.output(), "flush"))
	}
}
