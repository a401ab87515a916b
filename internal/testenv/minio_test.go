package testenv

import (
	"net/http"
	"testing"
	"time"
)

// TestMinIO: the cached MinIO starts, verifies SigV4 (a root-signed request
// works, an unsigned one is refused) and reports calls on its audit hook.
func TestMinIO(t *testing.T) {
	m := StartMinIO(t, MinIOOptions{})
	m.CreateBucket(t, "probe")
	if resp := m.Root(t, http.MethodPut, "/probe/a@b c", "", []byte("hello")); resp.StatusCode != 200 {
		t.Fatalf("put: %d %s", resp.StatusCode, resp.Body)
	}
	if keys := m.Keys(t, "probe"); len(keys) != 1 || keys[0] != "a@b c" {
		t.Fatalf("keys %q", keys)
	}
	resp, err := http.Get(m.URL + "/probe/a@b%20c")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned get: %d, want 403", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(m.Audit("PutObject")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no PutObject on the audit hook: %+v", m.Audit())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if e := m.Audit("PutObject")[0]; e.AccessKey != MinIORootUser || e.API.Object != "a@b c" {
		t.Fatalf("audit entry %+v", e)
	}
}
