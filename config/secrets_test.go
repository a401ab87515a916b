package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeSecret writes a secret file with mode perm into dir.
func writeSecret(t *testing.T, dir, name, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // umask
		t.Fatal(err)
	}
	return path
}

// Issue 12.12: every secret can come from a mounted file.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	key1, key2 := "0123456789abcdef0123456789abcdef", "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
	writeSecret(t, dir, "client", "s3cr3t\n", 0o600)
	writeSecret(t, dir, "session", key1+"\r\n\n"+key2+"\n", 0o400)
	src := head + publicRoute + `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret_file: client}
session:
  secrets_file: session
`
	f, err := Parse([]byte(src), dir, Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.IdPs[0].ResolvedClientSecret; got != "s3cr3t" {
		t.Errorf("client secret = %q, want the file's content without its newline", got)
	}
	if f.IdPs[0].ClientSecretFile != filepath.Join(dir, "client") {
		t.Errorf("client_secret_file not made absolute: %q", f.IdPs[0].ClientSecretFile)
	}
	want := [][]byte{[]byte(key1), DecodeSecret(key2)}
	if diff := cmp.Diff(want, f.Session.SecretKeys); diff != "" {
		t.Errorf("session keys, newest first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{filepath.Join(dir, "client"), filepath.Join(dir, "session")}, f.SecretFiles()); diff != "" {
		t.Errorf("SecretFiles (-want +got):\n%s", diff)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings for private files: %v", f.Warnings)
	}
	// Validate again (a reload, or a caller): same result, no "both set".
	again := *f
	again.IdPs = append([]IdP(nil), f.IdPs...)
	if err := again.Validate(Options{}); err != nil {
		t.Errorf("Validate of a loaded File: %v", err)
	}
}

func TestSecretFileProblems(t *testing.T) {
	dir := t.TempDir()
	writeSecret(t, dir, "empty", "\n\n", 0o600)
	writeSecret(t, dir, "two-lines", "a\nb\n", 0o600)
	writeSecret(t, dir, "short", "0123456789abcdef0123456789abcdef\ntoo-short\n", 0o600)
	writeSecret(t, dir, "big", strings.Repeat("x", maxSecretFileBytes+1), 0o600)
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"both client secrets", `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret: s, client_secret_file: two-lines}
`, []string{"idps[0].client_secret_file (line 6): set client_secret or client_secret_file, not both"}},
		{"empty client secret file", `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret_file: empty}
`, []string{"idps[0].client_secret_file (line 6): " + dir + "/empty: is empty"}},
		{"missing client secret file", `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret_file: nope}
`, []string{"idps[0].client_secret_file (line 6): " + dir + "/nope: no such file"}},
		{"client secret of two lines", `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret_file: two-lines}
`, []string{"idps[0].client_secret_file (line 6): " + dir + "/two-lines: holds more than one line; a client secret is one line"}},
		{"too big", `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret_file: big}
`, []string{"idps[0].client_secret_file (line 6): " + dir + "/big: larger than 64 KiB; is this the right file?"}},
		{"both session secrets", `session:
  secrets: ["0123456789abcdef0123456789abcdef"]
  secrets_file: short
`, []string{"session.secrets_file (line 7): set secrets or secrets_file, not both"}},
		{"empty session secrets file", `session: {secrets_file: empty}
`, []string{"session.secrets_file (line 5): " + dir + "/empty: is empty"}},
		{"short secret in the file", `session: {secrets_file: short}
`, []string{"session.secrets_file (line 5): line 2 of the file: must be at least 32 bytes (got 9); generate one with: openssl rand -base64 32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(head+tt.yaml+publicRoute), dir, Options{LookupEnv: noEnv})
			got := problemLines(t, err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			for _, p := range got {
				if strings.Contains(p, "too-short") || strings.Contains(p, "0123456789abcdef") {
					t.Errorf("a problem shows a secret: %s", p)
				}
			}
		})
	}
}

// TestWorldReadableSecretWarns: a secret file every user can read is a
// warning with its path and line, not a failure.
func TestWorldReadableSecretWarns(t *testing.T) {
	dir := t.TempDir()
	writeSecret(t, dir, "client", "s3cr3t", 0o644)
	src := head + publicRoute + `idps:
  - {name: corp, issuer: "https://idp.example.com", client_id: c, client_secret_file: client}
`
	f, err := Parse([]byte(src), dir, Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	want := []Problem{{Path: "idps[0].client_secret_file", Line: 8,
		Message: dir + "/client is readable by every user (mode 0644); restrict it, e.g. chmod 600 (Kubernetes: defaultMode 0400)"}}
	if diff := cmp.Diff(want, f.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
