package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ClientCertificate makes a Browser present a client certificate without
// asking: it is imported into the NSS database Chromium reads on Linux
// ($HOME/.pki/nssdb, with HOME a fresh directory for this browser), and
// Chromium's managed policy AutoSelectCertificateForUrls selects it for
// URLPattern. Managed policies live in /etc/chromium/policies/managed,
// which needs root (CI runs as root); the policy file is removed when the
// test ends. Debian's libnss3-tools provides certutil and pk12util
// (.ci/run installs it).
type ClientCertificate struct {
	// P12File is the PKCS#12 file (certificate and key) to import.
	P12File  string
	Password string
	// URLPattern is the policy's pattern, such as
	// "https://127.0.0.1:8443" (scheme, host and port of the site).
	URLPattern string
}

// chromiumPolicyDir is where Debian's Chromium reads managed policies.
const chromiumPolicyDir = "/etc/chromium/policies/managed"

// setUpClientCertificate imports c into a new NSS database under a new
// HOME and installs the auto-select policy; it returns the HOME for the
// browser process. A missing tool or an unwritable policy directory fails
// under CI and skips otherwise.
func setUpClientCertificate(t testing.TB, c *ClientCertificate) string {
	t.Helper()
	for _, tool := range []string{"certutil", "pk12util"} {
		if _, err := exec.LookPath(tool); err != nil {
			RequireComponent(t, "libnss3-tools ("+tool+")", err)
			return ""
		}
	}
	home := t.TempDir()
	db := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"certutil", "-N", "-d", db, "--empty-password"},
		{"pk12util", "-i", c.P12File, "-d", db, "-W", c.Password},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("testenv: %v: %v\n%s", args, err, out)
		}
	}
	rule, _ := json.Marshal(map[string]any{"pattern": c.URLPattern, "filter": map[string]any{}})
	policy, _ := json.Marshal(map[string]any{"AutoSelectCertificateForUrls": []string{string(rule)}})
	var suffix [6]byte
	rand.Read(suffix[:])
	path := filepath.Join(chromiumPolicyDir, "ztproxy-test-"+hex.EncodeToString(suffix[:])+".json")
	if err := os.MkdirAll(chromiumPolicyDir, 0o755); err != nil {
		RequireComponent(t, "chromium managed policy directory", fmt.Errorf("%s: %w (needs root)", chromiumPolicyDir, err))
		return ""
	}
	if err := os.WriteFile(path, policy, 0o644); err != nil {
		RequireComponent(t, "chromium managed policy directory", fmt.Errorf("%s: %w (needs root)", chromiumPolicyDir, err))
		return ""
	}
	t.Cleanup(func() { os.Remove(path) })
	return home
}
