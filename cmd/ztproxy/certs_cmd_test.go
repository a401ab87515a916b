package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCertsDevMessages: issue 15.6, `certs dev` suggested a curl of "/"
// that config.example.yaml answers with 404, and a second run said "set
// Force to replace the CA" (a Go field, not the --force flag).
func TestCertsDevMessages(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dev-certs")
	code, text := runZtproxy(t, "certs", "dev", "--out", out)
	if code != 0 || !strings.Contains(text, "https://localhost:8443/status") || !strings.Contains(text, "https://localhost:8443/devices") ||
		strings.Contains(text, "8443/ ") || !strings.Contains(text, "certs trust --ca "+filepath.Join(out, "ca.pem")) {
		t.Fatalf("certs dev (%d):\n%s", code, text)
	}
	code, text = runZtproxy(t, "certs", "dev", "--out", out)
	if code != 1 || !strings.Contains(text, "--force") || strings.Contains(text, "Force") {
		t.Fatalf("second certs dev (%d):\n%s", code, text)
	}
	if code, text = runZtproxy(t, "certs", "dev", "--out", out, "--force"); code != 0 {
		t.Fatalf("certs dev --force (%d):\n%s", code, text)
	}
}

// TestCertsTrust: issue 15.11, "import the demo CA first" said nothing of
// how; `certs trust` prints the commands for each system, with the CA's
// absolute path, and how to undo them.
func TestCertsTrust(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	for goos, want := range map[string][]string{
		"linux":   {`certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "ztproxy development CA" -i "` + ca + `"`, "update-ca-certificates", "-D -n"},
		"darwin":  {`security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db "` + ca + `"`, "security delete-certificate"},
		"windows": {`certutil -user -addstore Root "` + ca + `"`, "certutil -user -delstore Root"},
	} {
		code, text := runZtproxy(t, "certs", "trust", "--ca", ca, "--os", goos)
		for _, w := range want {
			if code != 0 || !strings.Contains(text, w) {
				t.Errorf("%s: exit %d, lacks %q:\n%s", goos, code, w, text)
			}
		}
	}
	if code, _ := runZtproxy(t, "certs", "trust", "--ca", ca, "--os", "plan9"); code != 2 {
		t.Errorf("unknown system: exit %d", code)
	}
}
