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

// TestKeysCommand: an operator lists a user's security keys and resets
// them in the embedded store with the real binary.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "z.yaml")
	writeFile(t, cfgPath, `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:1
external_url: https://ztp.example.com
insecure_plaintext: true
store: {path: keys.db}
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
