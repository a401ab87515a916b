package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRefinePath(t *testing.T) {
	tests := []struct{ path, msg, wantPath, wantMsg string }{
		{"tls", "tls.client_ca_file /x/ca.pem: no PEM certificate found", "tls.client_ca_file", "/x/ca.pem: no PEM certificate found"},
		{"tls", "tls.cert_file /a and tls.key_file /b: key does not match certificate", "tls.cert_file", "/a and tls.key_file /b: key does not match certificate"},
		{"risk", "risk.geoip_database: invalid MaxMind DB file", "risk.geoip_database", "invalid MaxMind DB file"},
		{"idps", "authn: browser sign-in: idps[0].issuer: must be https", "idps[0].issuer", "must be https"},
		{"idps", "authn: browser sign-in: external_url: required for browser sign-in", "external_url", "required for browser sign-in"},
		{"idps", "authn: session codec: too short", "idps", "session codec: too short"},
		{"store.path", "store: opening /x.db: invalid database", "store.path", "opening /x.db: invalid database"},
		{"routes", "proxy: config rejected: routes[1] (api): upstream must be an http or https URL", "routes[1]", "(api): upstream must be an http or https URL"},
		{"policies", "p.cedar:3:1: parse error", "policies", "p.cedar:3:1: parse error"},
		{"aws", "unknown.key: something", "aws", "unknown.key: something"},
	}
	for _, tt := range tests {
		gotPath, gotMsg := refinePath(tt.path, tt.msg)
		if gotPath != tt.wantPath || gotMsg != tt.wantMsg {
			t.Errorf("refinePath(%q, %q) = %q, %q; want %q, %q", tt.path, tt.msg, gotPath, gotMsg, tt.wantPath, tt.wantMsg)
		}
	}
}

// TestBuildProblemsHaveLines: issue 12.11. Problems only Build finds (file
// content read when the components are built) come with their YAML path
// and line, in file order, like validation problems; and a Report adds
// the components' later problems the same way.
func TestBuildProblemsHaveLines(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"garbage.pem": "garbage\n", "jwks.json": "[]", "p.cedar": "permit (principal, action, resource);\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "c.yaml")
	src := head + `policies: [p.cedar]
assertion:
  trusted_jwks: [jwks.json]
routes:
  - name: api
    host: api.example.com
    upstream: https://127.0.0.1:1
    upstream_ca_file: garbage.pem
    auth: public
`
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRuntimeWith(cfg, DefaultOptions())
	want := []string{
		"assertion.trusted_jwks (line 7): trusted JWKS " + dir + "/jwks.json: not a JWK set",
		"routes[0].upstream_ca_file (line 12): " + dir + "/garbage.pem: no PEM certificate found",
	}
	if diff := cmp.Diff(want, problemLines(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}

	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "garbage.pem"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src = head + publicRoute + "policies: [p.cedar]\n"
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := LoadRuntimeWith(cfg, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	rep := rt.NewReport()
	rep.Add("listen", fmt.Errorf("listen tcp: %w", errors.New("address already in use")))
	rep.Note("admin_listen", "free now")
	if diff := cmp.Diff([]string{"listen (line 1): listen tcp: address already in use"}, problemLines(t, rep.Err())); diff != "" {
		t.Errorf("report problems (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Problem{{Path: "admin_listen", Line: 2, Message: "free now"}}, rep.Notes()); diff != "" {
		t.Errorf("report notes (-want +got):\n%s", diff)
	}
}
