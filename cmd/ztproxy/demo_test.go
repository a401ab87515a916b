package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"ztproxy/internal/testenv"
)

// TestDemoSmoke runs `ztproxy demo` as the README tells a newcomer to and
// follows the printed instructions.
func TestDemoSmoke(t *testing.T) {
	dir := t.TempDir()
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p := startProc(t, admin, public, "demo", "--listen", public, "--admin", admin, "--dir", dir)
	out := p.output()
	tokens := map[string]string{}
	for _, m := range regexp.MustCompile(`(ALICE|BOB)=(\S+)`).FindAllStringSubmatch(out, -1) {
		tokens[m[1]] = m[2]
	}
	if tokens["ALICE"] == "" || tokens["BOB"] == "" {
		t.Fatalf("banner lacks tokens:\n%s", out)
	}
	if !strings.Contains(out, "NOT for production") {
		t.Error("demo banner does not say it is not for production")
	}
	certDir := filepath.Join(dir, "certs")
	client := tlsClient(t, certDir, false)
	// The server certificate is for localhost; dial the chosen port.
	base := "https://localhost:" + strings.Split(public, ":")[1]
	resp, body := get(t, client, base+"/status", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, client, base+"/hello", map[string]string{"Authorization": "Bearer " + tokens["ALICE"]})
	if resp.StatusCode != 200 || !strings.Contains(body, "alice@demo.ztproxy.dev") {
		t.Fatalf("alice: %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, client, base+"/hello", map[string]string{"Authorization": "Bearer " + tokens["BOB"]})
	if resp.StatusCode != 403 {
		t.Fatalf("bob: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/hello", nil)
	req.Header.Set("Authorization", "Bearer "+tokens["ALICE"])
	r2, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 401 || !strings.Contains(r2.Header.Get("WWW-Authenticate"), "insufficient_user_authentication") {
		t.Fatalf("POST: %d %q", r2.StatusCode, r2.Header.Get("WWW-Authenticate"))
	}
	resp, body = get(t, tlsClient(t, certDir, true), base+"/device", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "dev-laptop") {
		t.Fatalf("device: %d %s", resp.StatusCode, body)
	}
}
