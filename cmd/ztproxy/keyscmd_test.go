package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ztproxy/config"
	"ztproxy/store"
)

// operatorConfig writes a small config with an embedded store and opens
// that store, for a test to fill before it runs an operator command.
func operatorConfig(t *testing.T) (string, store.Store) {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "z.yaml")
	writeFile(t, cfgPath, `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:1
external_url: https://ztp.example.com
insecure_plaintext: true
store: {path: state.db}
routes:
  - {name: api, host: ztp.example.com, upstream: "http://127.0.0.1:9", auth: public}
`)
	f, err := config.Load(cfgPath, config.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	st, err := config.OpenStore(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfgPath, st
}

// TestKeysCommand: an operator lists a user's security keys and resets
// them in the embedded store with the real binary.
func TestKeysCommand(t *testing.T) {
	cfgPath, st := operatorConfig(t)
	for i, id := range [][]byte{{1, 2, 3}, {4, 5, 6}} {
		c := store.Credential{UserID: "https://idp#alice", ID: id, PublicKey: []byte{9}, Name: "key " + string(rune('A'+i)), CreatedAt: time.Now()}
		if err := st.PutCredential(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	code, out := runZtproxy(t, "keys", "list", "https://idp#alice", "--config", cfgPath)
	var listed struct {
		Keys []struct{ ID, Name string } `json:"security_keys"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed.Keys) != 2 || listed.Keys[0].ID != "AQID" {
		t.Fatalf("keys list: %d %s", code, out)
	}
	if code, out := runZtproxy(t, "keys", "remove", "https://idp#alice", "--config", cfgPath); code != 2 || !strings.Contains(out, "exactly one of --id and --all") {
		t.Fatalf("remove without a choice: %d %s", code, out)
	}
	if code, out := runZtproxy(t, "keys", "remove", "https://idp#alice", "--id", "nope", "--config", cfgPath); code == 0 {
		t.Fatalf("remove of an unknown id: %s", out)
	}
	if code, out := runZtproxy(t, "keys", "remove", "https://idp#alice", "--id", "AQID", "--config", cfgPath); code != 0 || !strings.Contains(out, "removed 1") {
		t.Fatalf("remove --id: %d %s", code, out)
	}
	if code, out := runZtproxy(t, "keys", "remove", "https://idp#alice", "--all", "--config", cfgPath); code != 0 || !strings.Contains(out, "removed 1") {
		t.Fatalf("remove --all: %d %s", code, out)
	}
	if code, out := runZtproxy(t, "keys", "list", "https://idp#alice", "--config", cfgPath); code != 0 || !strings.Contains(out, `"security_keys": []`) {
		t.Fatalf("list after reset: %d %s", code, out)
	}
}

// TestRiskCommandUsers: issue 15.14, `risk flag alice` (a bare name) was
// accepted silently and `risk show` mixed Go field names and zero times
// into its JSON. A bare name is refused, an id never seen is warned about,
// an email address the proxy has seen finds the user, and the JSON is one
// snake_case schema without unset times.
func TestRiskCommandUsers(t *testing.T) {
	cfgPath, st := operatorConfig(t)
	obs := store.Observation{UserID: "https://idp#alice", Requests: 2, Email: "alice@example.com", LastSeen: time.Now()}
	if err := st.ApplyObservation(context.Background(), obs); err != nil {
		t.Fatal(err)
	}
	st.Close()

	if code, out := runZtproxy(t, "risk", "flag", "alice", "--level", "watch", "--reason", "x", "--config", cfgPath); code != 2 || !strings.Contains(out, "is not a user id") {
		t.Fatalf("bare name: %d %s", code, out)
	}
	if code, out := runZtproxy(t, "risk", "flag", "https://idp#nobody", "--level", "watch", "--reason", "x", "--config", cfgPath); code != 0 || !strings.Contains(out, "warning: the store has no profile of https://idp#nobody") {
		t.Fatalf("unknown id: %d %s", code, out)
	}
	if code, out := runZtproxy(t, "risk", "flag", "Alice@Example.com", "--level", "watch", "--reason", "new joiner", "--config", cfgPath); code != 0 ||
		!strings.Contains(out, "Alice@Example.com is the user https://idp#alice") || !strings.Contains(out, "flagged https://idp#alice as watch") {
		t.Fatalf("by email: %d %s", code, out)
	}
	if code, out := runZtproxy(t, "risk", "flag", "carol@example.com", "--level", "watch", "--reason", "x", "--config", cfgPath); code != 1 || !strings.Contains(out, "has not seen a user with the verified email address") {
		t.Fatalf("unknown email: %d %s", code, out)
	}
	code, out := runZtproxy(t, "risk", "show", "https://idp#alice", "--config", cfgPath)
	var shown map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil {
		t.Fatalf("risk show: %d %s", code, out)
	}
	flag, _ := shown["flag"].(map[string]any)
	profile, _ := shown["profile"].(map[string]any)
	if flag["level"] != "watch" || flag["set_at"] == nil || flag["expires_at"] != nil || profile["email"] != "alice@example.com" || profile["requests"] != 2.0 {
		t.Errorf("risk show: %s", out)
	}
	for _, bad := range []string{"UserID", "SetAt", "0001-01-01", "ExpiresAt"} {
		if strings.Contains(out, bad) {
			t.Errorf("risk show prints %q:\n%s", bad, out)
		}
	}
}
